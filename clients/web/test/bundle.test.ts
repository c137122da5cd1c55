/** The ES module a page loads (dist/nudge.js, built by scripts/build.mjs) is self-contained
 * and works: built here into a scratch folder, imported, and driven over the fake network. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module script without types
import { bundle } from "../scripts/build.mjs";
import { FakeNudge, tokenFor, until } from "./fake-network.js";
import { message } from "./messages.js";

// Inside the project (vitest loads modules from under its root only), never committed.
const cache = join(__dirname, "..", "node_modules", ".cache");
mkdirSync(cache, { recursive: true });
const out = mkdtempSync(join(cache, "bundle-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe("the bundle", () => {
  it("imports nothing, and fetches, shows and reports a message", async () => {
    await bundle(out);
    const code = readFileSync(join(out, "nudge.js"), "utf8");
    expect(code).not.toMatch(/^\s*import\s/m);
    expect(readFileSync(join(out, "nudge.min.js"), "utf8").length).toBeLessThan(code.length);

    const sdk = await import(/* @vite-ignore */ join(out, "nudge.js"));
    const net = new FakeNudge().on("FetchMessages", () => ({ messages: [message({ title: "From the bundle" })] }));
    const nudge = sdk.init({ endpoint: "https://edge.test", apiKey: "k", userToken: tokenFor("user-1"), fetch: net.fetch });
    await sdk.fetchMessages({ screen: "home" });
    expect(document.querySelector(".nudge-title")?.textContent).toBe("From the bundle");
    await until(() => net.callsTo("ReportInteraction").length === 1, "the impression");
    expect(sdk.VERSION).toBe(JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8")).version);
    nudge.close();
  });
});

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { Nudge, VERSION } from "../src/index.js";

const root = resolve(__dirname, "..");

describe("version", () => {
  it("is package.json's, with a CHANGELOG entry", () => {
    const pkg = JSON.parse(readFileSync(resolve(root, "package.json"), "utf8"));
    expect(VERSION).toBe(pkg.version);
    expect(Nudge.version).toBe(pkg.version);
    const changelog = readFileSync(resolve(root, "CHANGELOG.md"), "utf8");
    expect(changelog).toMatch(new RegExp(`^## ${pkg.version.replace(/\./g, "\\.")}\\b`, "m"));
  });
});

/** The committed generated code must be what buf makes from the protos now (like the
 * Python generated code): a proto change without `npm run generate` fails here. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(__dirname, "..");

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path, "utf8"));
    }
  };
  walk(dir);
  return out;
}

describe("generated code", () => {
  it("matches the protos (run `npm run generate` in clients/web)", () => {
    const scratch = mkdtempSync(join(tmpdir(), "nudge-web-gen-"));
    try {
      const bin = join(root, "node_modules", ".bin");
      execFileSync(join(bin, "buf"), ["generate", "--output", scratch], {
        cwd: root,
        env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ""}` },
        stdio: "pipe",
      });
      const fresh = files(join(scratch, "src", "gen"));
      const committed = files(join(root, "src", "gen"));
      expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
      for (const [name, text] of fresh) expect(committed.get(name), name).toBe(text);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

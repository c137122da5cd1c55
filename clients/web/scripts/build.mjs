// Bundles the SDK as one ES module for pages that load it with <script type="module">
// (the demo page, the console's previews) and a minified copy beside it. dist/ is built,
// never committed.
import { build } from "esbuild";

const common = {
  entryPoints: ["src/index.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  sourcemap: true,
  legalComments: "none",
};

await build({ ...common, outfile: "dist/nudge.js" });
await build({ ...common, outfile: "dist/nudge.min.js", minify: true });

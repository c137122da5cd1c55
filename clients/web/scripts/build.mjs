// Bundles the SDK as one ES module for pages that load it with <script type="module">
// (the demo page, the console's previews) and a minified copy beside it. dist/ is built,
// never committed. test/bundle.test.ts builds the same bundle into a scratch folder and uses it.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export async function bundle(outdir = join(root, "dist")) {
  const common = {
    entryPoints: [join(root, "src/index.ts")],
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    sourcemap: true,
    legalComments: "none",
    logLevel: "warning",
  };
  await build({ ...common, outfile: join(outdir, "nudge.js") });
  await build({ ...common, outfile: join(outdir, "nudge.min.js"), minify: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle();

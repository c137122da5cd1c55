// Bundles the SDK as one ES module for pages that load it with <script type="module">
// (the demo page, the console's previews) and a minified copy beside it, then the demo shop
// page (demo/) into dist/demo with its own copy of that module. dist/ is built, never
// committed. test/bundle.test.ts builds the same bundle into a scratch folder and uses it.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const common = {
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
};

export async function bundle(outdir = join(root, "dist")) {
  const sdk = { ...common, entryPoints: [join(root, "src/index.ts")] };
  await build({ ...sdk, outfile: join(outdir, "nudge.js") });
  await build({ ...sdk, outfile: join(outdir, "nudge.min.js"), minify: true });
}

// The shop imports the SDK from ../src for its types; in the bundle that import stays
// `./nudge.js`, the module every page loads, so the demo runs exactly what is shipped.
const sdkAsModule = {
  name: "sdk-as-module",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/src\/index\.js$/ }, () => ({ path: "./nudge.js", external: true }));
  },
};

export async function demo(outdir = join(root, "dist")) {
  const site = join(outdir, "demo");
  mkdirSync(site, { recursive: true });
  await build({ ...common, entryPoints: [join(root, "demo/shop.ts")], outfile: join(site, "shop.js"),
    plugins: [sdkAsModule] });
  for (const file of ["nudge.js", "nudge.js.map"]) copyFileSync(join(outdir, file), join(site, file));
  for (const file of ["index.html", "shop.css"]) copyFileSync(join(root, "demo", file), join(site, file));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await bundle();
  await demo();
}

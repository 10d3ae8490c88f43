// Bundles the dashboard into dist/: index.html, app.js and app.css (uPlot's CSS included).
// Deterministic for a given package-lock.json, so CI can check dist/ is up to date.
// esbuild strips the types without checking them: `npm run build` runs `npm run typecheck`
// (tsc --noEmit, tsconfig.json) first, so a type error fails the build.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

await rm("dist", { recursive: true, force: true });
await mkdir("dist", { recursive: true });
await build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  outdir: "dist",
  legalComments: "none",
  logLevel: "warning",
});
await copyFile("index.html", "dist/index.html");

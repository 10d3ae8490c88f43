// Stylesheets are imported for esbuild, which bundles them into dist/app.css; to TypeScript
// they are modules with no exports.
declare module "*.css";

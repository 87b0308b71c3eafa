// Joins the built modules (dist/*.js) into the one ES module the demo page
// loads from the server (core/src/server/demo/ringcast-client.js), so the
// binary embeds the SDK without a bundler as a dependency. The modules'
// relative imports are dropped (everything is in one scope); their exports
// stay, giving the same names as dist/index.js.
//
//   node scripts/bundle.mjs [OUT]    default OUT: the file in core/
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, "../dist");
// Dependency order: each module after the ones it imports.
const ORDER = ["timers", "backoff", "errors", "token", "emitter", "socket", "subscription", "client"];
const out = process.argv[2] ?? path.join(here, "../../../core/src/server/demo/ringcast-client.js");

let text = "// ringcast-client, built from clients/js by scripts/bundle.mjs: do not edit by hand.\n";
for (const name of ORDER) {
  const source = readFileSync(path.join(dist, `${name}.js`), "utf8")
    .split("\n")
    .filter((line) => !/^import .* from "\.\/[a-z]+\.js";$/.test(line))
    .join("\n");
  text += `\n// ---- ${name}.js\n${source}`;
}
writeFileSync(out, text);

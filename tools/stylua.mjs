// StyLua for `make lint`: `node tools/stylua.mjs [--check] FILE...` formats the files in place, or
// with --check lists the ones that differ from the style and exits 1.
//
// StyLua's own binary comes from GitHub releases or crates.io, which this project's machines do
// not reach; the npm package @johnnymorganz/stylua is the same formatter compiled to WebAssembly
// and shipped inside the package (nothing is downloaded at install or run time). The Makefile
// installs it under .venv/stylua; STYLUA_MODULES names another node_modules directory.
// The settings are .stylua.toml's, the file a native `stylua` reads: its flat `key = value` lines
// are all this reads.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modules = process.env.STYLUA_MODULES || join(root, ".venv", "stylua", "node_modules");
const stylua = createRequire(join(modules, "noop.js"))("@johnnymorganz/stylua");

// The enum-valued settings, spelt in .stylua.toml as StyLua's documentation spells them.
const ENUMS = {
  syntax: stylua.LuaVersion,
  line_endings: stylua.LineEndings,
  indent_type: stylua.IndentType,
  quote_style: stylua.QuoteStyle,
  call_parentheses: stylua.CallParenType,
  collapse_simple_statement: stylua.CollapseSimpleStatement,
};

function readConfig(path) {
  const config = stylua.Config.new();
  for (const raw of readFileSync(path, "utf8").split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const match = /^(\w+)\s*=\s*(?:"([^"]*)"|(\d+))$/.exec(line);
    if (!match) throw new Error(`${path}: cannot read '${raw}'`);
    const [, key, text, number] = match;
    if (number !== undefined) {
      config[key] = Number(number);
    } else if (ENUMS[key] && ENUMS[key][text] !== undefined) {
      config[key] = ENUMS[key][text];
    } else {
      throw new Error(`${path}: unknown setting ${key} = "${text}"`);
    }
  }
  return config;
}

const args = process.argv.slice(2);
const check = args[0] === "--check";
const files = check ? args.slice(1) : args;
let differ = 0;
for (const file of files) {
  const source = readFileSync(file, "utf8");
  // formatCode takes the Config over (frees it): one per call
  const config = readConfig(join(root, ".stylua.toml"));
  const formatted = stylua.formatCode(source, config, null, stylua.OutputVerification.Full);
  if (formatted === source) continue;
  if (check) {
    console.error(`${file}: not formatted (make format, or stylua ${file})`);
    differ += 1;
  } else {
    writeFileSync(file, formatted);
  }
}
process.exit(differ ? 1 : 0);

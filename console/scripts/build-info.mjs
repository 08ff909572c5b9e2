// Writes dist/build-info.json: a digest of every source file the build reads. The Python
// test suite computes the same digest from the repository, so a change to the sources
// without a rebuild (or a hand-edited build) fails CI. Keep in step with
// src/danlu/console/sources.py.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(import.meta.url), "..", "..");
const TOP_FILES = ["index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"];
const TOP_DIRS = ["src", "public", "scripts"];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const files = [...TOP_FILES.map((f) => join(root, f)), ...TOP_DIRS.flatMap((d) => walk(join(root, d)))]
  .map((path) => relative(root, path).split("\\").join("/"))
  .sort();
const lines = files.map((rel) => `${rel}\0${createHash("sha256").update(readFileSync(join(root, rel))).digest("hex")}\n`);
const digest = createHash("sha256").update(lines.join("")).digest("hex");
const info = { sources_sha256: digest, files: files.length };
writeFileSync(join(root, "..", "src", "danlu", "console", "dist", "build-info.json"), JSON.stringify(info, null, 2) + "\n");
console.log(`build-info: ${files.length} source files, sha256 ${digest}`);

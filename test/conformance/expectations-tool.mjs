#!/usr/bin/env node
// Helper for make-expectations.sh (plain Node, no build needed, so the corpus can be regenerated
// from a checkout whose TypeScript does not compile). Two sub-commands:
//
//   node expectations-tool.mjs cases CASES_JSON
//       validates cases.json and writes one NUL-separated record per case to stdout:
//       name, netns ("main" | "virbr0"), N, N env assignments "K=V", M, M arguments.
//
//   node expectations-tool.mjs assemble CASES_JSON RAW_DIR OUT_JSON META_JSON
//       reads RAW_DIR/<index>.{status,stdout,stderr,nvram} written by make-expectations.sh and
//       writes OUT_JSON ({generated_by, ..., cases: [...]}) with the qemu argv recovered from
//       the reference's quote_cmd line.
//
// The quote_cmd parser here is deliberately duplicated in TypeScript (test/support/reference.ts);
// test/conformance/reference.test.ts checks that both read every recorded line the same way.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';

const CASE_KEYS = new Set(['name', 'args', 'random', 'env', 'netns', 'note']);
const NETNS = new Set(['main', 'virbr0']);

function die(message) {
  process.stderr.write(`expectations-tool: ${message}\n`);
  process.exit(2);
}

function loadCases(file) {
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  if (!doc || !Array.isArray(doc.cases)) die(`${file}: expected {"cases": [...]}`);
  const seen = new Set();
  for (const [i, c] of doc.cases.entries()) {
    const where = `${file}: case #${i}`;
    if (!c || typeof c !== 'object') die(`${where}: not an object`);
    for (const k of Object.keys(c)) if (!CASE_KEYS.has(k)) die(`${where}: unknown key ${k}`);
    if (typeof c.name !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(c.name)) die(`${where}: bad name`);
    if (seen.has(c.name)) die(`${where}: duplicate name ${c.name}`);
    seen.add(c.name);
    if (!Array.isArray(c.args) || !c.args.every((a) => typeof a === 'string')) die(`${where}: args must be strings`);
    for (const a of c.args) if (a.includes('\0') || a.includes('\n')) die(`${where}: NUL or newline in an argument`);
    if (c.random !== undefined && c.random !== true) die(`${where}: random must be true when present`);
    if (c.netns !== undefined && !NETNS.has(c.netns)) die(`${where}: netns must be one of ${[...NETNS]}`);
    if (c.env !== undefined) {
      if (!c.env || typeof c.env !== 'object') die(`${where}: env must be an object`);
      for (const [k, v] of Object.entries(c.env)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || typeof v !== 'string' || v.includes('\0')) die(`${where}: bad env ${k}`);
      }
    }
    if (c.note !== undefined && typeof c.note !== 'string') die(`${where}: note must be a string`);
  }
  return doc.cases;
}

// --- the reference's quote_cmd, forwards and backwards ---------------------------------------

/** What the reference's quote_cmd prints for argv (without echo's newline). */
function quoteCmd(argv) {
  let line = '';
  for (let x of argv) {
    if (x.includes(' ')) x = x.includes('"') ? `'${x}'` : `"${x}"`;
    line += ` ${x}`;
  }
  return line;
}

/**
 * Splits a quote_cmd line back into the argv it was made from. quote_cmd joins words with one
 * space, wraps a word holding a space in "..." (or in '...' when it also holds a double quote),
 * and leaves every other word alone. A quoted word therefore always spans at least two
 * space-separated pieces; "..." content never holds a double quote; '...' content always does.
 * The result must re-quote to exactly the input, or we refuse it.
 */
function splitQuoteCmd(line) {
  if (!line.startsWith(' ')) throw new Error(`not a quote_cmd line (no leading space): ${JSON.stringify(line)}`);
  const pieces = line.slice(1).split(' ');
  const out = [];
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    const q = p[0];
    let taken = false;
    if (q === '"' || q === "'") {
      for (let j = i + 1; j < pieces.length; j++) {
        const last = pieces[j];
        if (last.endsWith(q)) {
          const inner = [p.slice(1), ...pieces.slice(i + 1, j), last.slice(0, -1)].join(' ');
          if (q === '"' ? !inner.includes('"') : inner.includes('"')) {
            out.push(inner);
            i = j;
            taken = true;
            break;
          }
        }
        if (q === '"' && last.includes('"')) break;
      }
    }
    if (!taken) out.push(p);
  }
  if (quoteCmd(out) !== line) throw new Error(`quote_cmd line does not round-trip: ${JSON.stringify(line)}`);
  return out;
}

/** The stderr line holding the qemu command (quote_cmd output: one leading space, -enable-kvm). */
function findQemuLine(lines) {
  const hits = lines.filter((l) => /^ [^ ]/.test(l) && splitQuoteCmd(l).includes('-enable-kvm'));
  if (hits.length > 1) throw new Error(`more than one qemu command line:\n${hits.join('\n')}`);
  return hits[0] ?? null;
}

function toLines(text) {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

// --- sub-commands ------------------------------------------------------------------------------

function cmdCases(file) {
  const chunks = [];
  for (const c of loadCases(file)) {
    const env = Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`);
    chunks.push(c.name, c.netns ?? 'main', String(env.length), ...env, String(c.args.length), ...c.args);
  }
  process.stdout.write(chunks.map((s) => `${s}\0`).join(''));
}

function cmdAssemble(casesFile, rawDir, outFile, metaFile) {
  const cases = loadCases(casesFile);
  const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  const records = cases.map((c, i) => {
    const read = (ext) => readFileSync(`${rawDir}/${i}.${ext}`, 'utf8');
    const status = Number(read('status').trim());
    if (!Number.isInteger(status)) die(`case ${c.name}: bad status file`);
    const stderr = toLines(read('stderr'));
    const stdout = toLines(read('stdout'));
    let argv = null;
    let qemuLine;
    try {
      qemuLine = findQemuLine(stderr);
      if (qemuLine !== null) argv = splitQuoteCmd(qemuLine);
    } catch (e) {
      die(`case ${c.name}: ${e.message}`);
    }
    const rec = { name: c.name, args: c.args };
    if (c.random) rec.random = true;
    if (c.netns) rec.netns = c.netns;
    if (c.env) rec.env = c.env;
    rec.status = status;
    rec.stdout = stdout;
    rec.stderr = stderr;
    rec.argv = argv;
    const nvram = read('nvram');
    if (nvram !== '') {
      const [path, before, after] = toLines(nvram);
      rec.nvram = { path, before, after };
    }
    return rec;
  });
  const doc = { ...meta, cases: records };
  const tmp = `${outFile}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`);
  renameSync(tmp, outFile);
  const errors = records.filter((r) => r.status !== 0).length;
  process.stderr.write(`wrote ${outFile}: ${records.length} cases (${errors} exit non-zero, ${records.filter((r) => r.argv).length} with a qemu argv)\n`);
}

const [sub, ...rest] = process.argv.slice(2);
if (sub === 'cases' && rest.length === 1) cmdCases(rest[0]);
else if (sub === 'assemble' && rest.length === 4) cmdAssemble(rest[0], rest[1], rest[2], rest[3]);
else die('usage: expectations-tool.mjs cases CASES_JSON | assemble CASES_JSON RAW_DIR OUT_JSON META_JSON');

import { resolve } from 'node:path';
import { DEFAULT_POLICY_FILE } from '../defaults.js';
import { assemble } from './assemble.js';
import { parseDirective } from './directive.js';
import { PolicyError, where } from './errors.js';
import { readPolicyFile } from './read.js';
import { requireRootOwnedFile, type FileCheck } from './safety.js';
import { splitLine } from './tokens.js';
import type { Directive, Policy } from './types.js';

/** How deep includes may nest (the main file is depth 0). */
const MAX_INCLUDE_DEPTH = 8;

export interface ParseOptions {
  /**
   * Whether a file may be trusted (see safety.ts). Default: `requireRootOwnedFile`, always,
   * unless a caller passes another check; unit tests pass one that trusts any file.
   */
  readonly checkFile?: FileCheck;
  readonly maxIncludeDepth?: number;
}

interface Walk {
  readonly check: FileCheck;
  readonly maxDepth: number;
  readonly files: string[];
  readonly directives: Directive[];
}

interface Frame {
  readonly id: string;
  readonly path: string;
}

function walk(text: string, file: string, depth: number, chain: readonly Frame[], state: Walk): void {
  state.files.push(file);
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, index) => {
    const line = index + 1;
    const { words, text: directiveText } = splitLine(raw, file, line);
    if (words.length === 0) return;
    const source = { file, line, text: directiveText };
    const directive = parseDirective(words, source, depth + 1);
    state.directives.push(directive);
    if (directive.kind !== 'include') return;

    const target = directive.path;
    if (depth + 1 > state.maxDepth) {
      throw new PolicyError('POLICY_INCLUDE_DEPTH',
        `${where(file, line)}include ${target} would nest includes ${depth + 1} deep; expected at most ${state.maxDepth} levels of include`,
        { file, line });
    }
    const read = readPolicyFile(target, state.check, source);
    const loop = chain.findIndex((f) => f.id === read.id || f.path === target);
    if (loop >= 0) {
      const cycle = [...chain.slice(loop).map((f) => f.path), target].join(' -> ');
      throw new PolicyError('POLICY_INCLUDE_LOOP',
        `${where(file, line)}include ${target} makes a loop (${cycle}); expected a file that is not already being included`,
        { file, line });
    }
    try {
      walk(read.text, target, depth + 1, [...chain, { id: read.id, path: target }], state);
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      throw new PolicyError(err.code, `${err.message} (included from ${file}:${line})`,
        { ...(err.file === undefined ? {} : { file: err.file }), ...(err.line === undefined ? {} : { line: err.line }), cause: err });
    }
  });
}

function run(text: string, file: string, id: string, options: ParseOptions): Policy {
  const state: Walk = {
    check: options.checkFile ?? requireRootOwnedFile,
    maxDepth: options.maxIncludeDepth ?? MAX_INCLUDE_DEPTH,
    files: [],
    directives: [],
  };
  walk(text, file, 0, [{ id, path: file }], state);
  return assemble(file, state.files, state.directives);
}

/**
 * Read and parse the policy file and its includes. Throws a PolicyError (POLICY_SYNTAX,
 * POLICY_IO, POLICY_INCLUDE_LOOP, POLICY_INCLUDE_DEPTH, POLICY_UNSAFE_FILE) whose message
 * names the file and line and what was expected; the helper refuses to start on any of them.
 */
export function loadPolicy(file: string = DEFAULT_POLICY_FILE, options: ParseOptions = {}): Policy {
  const path = resolve(file);
  const { text, id } = readPolicyFile(path, options.checkFile ?? requireRootOwnedFile);
  return run(text, path, id, options);
}

/**
 * Parse policy text as if it were the file `file` (used for messages and to resolve relative
 * includes, which are read from disk with the same checks as loadPolicy).
 * @internal For tests: the parser loadPolicy runs, on texts written in the test.
 */
export function parsePolicyText(text: string, file: string, options: ParseOptions = {}): Policy {
  const path = resolve(file);
  return run(text, path, `text:${path}`, options);
}

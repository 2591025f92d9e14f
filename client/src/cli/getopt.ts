/**
 * GNU getopt(1) semantics (util-linux getopt over glibc getopt_long), because the reference
 * parses its command line that way and scripts rely on it: permutation of non-options,
 * `--` ends options, clustered short options (`-vv`, `-dFILE`), `--long=value` and
 * `--long value`, and unambiguous prefixes of long options (`--dry` for `--dry-run`). A prefix
 * matching several options is ambiguous unless they all take arguments the same way (glibc's
 * rule), in which case the first listed wins. (The reference lists no two options that differ
 * only that way, so this matters for one case: `--no` is --no-dowait, as in the reference, even
 * though --no-reboot now also starts with it; getopt(1) itself would call that ambiguous:
 * the decision and its reason are in docs/deviations.md.)
 */
import { ClientError } from '../errors.js';

export interface OptionSpec {
  /** Long name without dashes. */
  long: string;
  /** Single-letter short form, if any. */
  short?: string;
  /** Whether the option takes a (required) argument. */
  takesValue: boolean;
}

interface ParsedOption {
  /** The long name of the option matched. */
  name: string;
  value?: string;
}

export interface GetoptResult {
  options: ParsedOption[];
  /** Non-option arguments and everything after `--`, in order. */
  operands: string[];
}

function usageError(message: string): ClientError {
  return new ClientError('USAGE', message, { exitCode: 1 });
}

function matchLong(specs: readonly OptionSpec[], name: string, whole: string): OptionSpec {
  const exact = specs.find((s) => s.long === name);
  if (exact) return exact;
  const prefixed = specs.filter((s) => s.long.startsWith(name));
  const first = prefixed[0];
  if (first === undefined) throw usageError(`unrecognized option '${whole}'`);
  if (prefixed.some((s) => s.takesValue !== first.takesValue)) {
    throw usageError(
      `option '${whole}' is ambiguous; possibilities: ${prefixed.map((s) => `'--${s.long}'`).join(' ')}`,
    );
  }
  return first;
}

export function getopt(argv: readonly string[], specs: readonly OptionSpec[]): GetoptResult {
  const options: ParsedOption[] = [];
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const spec = matchLong(specs, name, arg);
      if (!spec.takesValue) {
        if (eq !== -1) throw usageError(`option '--${spec.long}' doesn't allow an argument`);
        options.push({ name: spec.long });
      } else if (eq !== -1) {
        options.push({ name: spec.long, value: arg.slice(eq + 1) });
      } else if (i + 1 < argv.length) {
        options.push({ name: spec.long, value: argv[++i]! });
      } else {
        throw usageError(`option '--${spec.long}' requires an argument`);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const spec = specs.find((s) => s.short === letter);
        if (spec === undefined) throw usageError(`invalid option -- '${letter}'`);
        if (!spec.takesValue) {
          options.push({ name: spec.long });
          continue;
        }
        if (j + 1 < arg.length) options.push({ name: spec.long, value: arg.slice(j + 1) });
        else if (i + 1 < argv.length) options.push({ name: spec.long, value: argv[++i]! });
        else throw usageError(`option requires an argument -- '${letter}'`);
        break;
      }
      continue;
    }
    operands.push(arg);
  }
  return { options, operands };
}

/**
 * Parse `qemu-system-* -device MODEL,help`. QEMU ≥ 5 prints a header line and then one
 * property a line, `  name=<type>  - description`; the description may hold dots, equals
 * signs or anything else, so only the leading name is taken.
 */
const PROPERTY = /^\s+([A-Za-z0-9_.-]+)=/;

export function parseDeviceHelp(output: string): string[] {
  const names: string[] = [];
  for (const line of output.split('\n')) {
    const match = PROPERTY.exec(line);
    if (match?.[1] !== undefined) names.push(match[1]);
  }
  return names;
}

/** KVM when /dev/kvm can be opened read-write, otherwise TCG (with one line saying so). */
import { closeSync, openSync } from 'node:fs';

export interface Accel {
  kvm: boolean;
  args: string[];
  /** Why KVM is not used, for the one-line warning. */
  reason?: string;
}

export function detectAccel(device = '/dev/kvm'): Accel {
  try {
    closeSync(openSync(device, 'r+'));
    return { kvm: true, args: ['-enable-kvm'] };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? `${device} does not exist` : `${device} cannot be opened (${code ?? 'error'})`;
    return { kvm: false, args: ['-accel', 'tcg'], reason };
  }
}

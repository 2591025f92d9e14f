import { ClientError } from '../../../client/src/errors.js';
import type { DeviceProber } from '../../../client/src/qemu/probe.js';

/** A fixed property list per device model; unknown models fail as the real prober does. Records what was asked. */
export class FakeProber implements DeviceProber {
  readonly asked: string[] = [];
  constructor(readonly models: Record<string, string[]>) {}
  properties(model: string): readonly string[] {
    this.asked.push(model);
    const props = this.models[model];
    if (props === undefined) throw new ClientError('QEMU_PROBE', `qemu does not know device model '${model}'`);
    return props;
  }
}

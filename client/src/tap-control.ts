import { ClientError } from './errors.js';
export async function tapControl(_argv: string[]): Promise<number> {
  throw new ClientError('RUN', 'not yet');
}

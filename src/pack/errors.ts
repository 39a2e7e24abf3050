// An archive that cannot be trusted: the message names the archive, the entry and the problem.
import { CriuError } from '../errors.js';

export class ArchiveError extends CriuError {
  constructor(
    readonly archive: string,
    readonly entry: string | undefined,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super('EARCHIVE', `${archive}: ${entry === undefined ? '' : `entry ${JSON.stringify(entry)}: `}${problem}`, options);
    this.name = 'ArchiveError';
  }
}

// Image errors always name the file and what is wrong with it.
import { CriuError } from '../errors.js';

export class ImageError extends CriuError {
  constructor(
    readonly file: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super('EIMAGE', `${file}: ${problem}`, options);
    this.name = 'ImageError';
  }
}

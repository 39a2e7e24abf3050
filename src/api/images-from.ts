// Where restore and show take their images from: a directory, or an archive made by pack and
// read in place (opened, verified, handed over as the image source, closed afterwards).
import { CriuError } from '../errors.js';
import { sourceOf, type ImageSource } from '../images/source.js';

/** Exactly one of the two. */
export interface ImagesFrom {
  imagesDir?: string;
  archive?: string;
}

/** Runs fn on the images' source; `name` is how messages call them (the directory or the archive). */
export async function withImages<T>(from: ImagesFrom, fn: (src: ImageSource, name: string) => Promise<T>): Promise<T> {
  if ((from.imagesDir === undefined) === (from.archive === undefined)) {
    throw new CriuError('EINVAL', 'give the images as imagesDir or as archive (exactly one)');
  }
  if (from.imagesDir !== undefined) return fn(sourceOf(from.imagesDir), from.imagesDir);
  const { Archive } = await import('../pack/archive.js');
  const archive = Archive.open(from.archive!);
  try {
    return await fn(archive.root(), from.archive!);
  } finally {
    archive.close();
  }
}

/** The image importer's errors: a source it cannot read, bytes that are not the ones named. */
import { DevmapperError, ErrorCodes } from '../errors';

export function imageFormat(file: string, why: string, cause?: unknown): DevmapperError {
  return new DevmapperError(`${file}: ${why}`, { code: ErrorCodes.IMAGE_FORMAT, device: file, operation: 'image import', cause });
}

export function imageDigest(blob: string, what: string, expected: string, actual: string): DevmapperError {
  return new DevmapperError(`${what} ${blob}: sha256 is ${actual}, expected ${expected}`, {
    code: ErrorCodes.IMAGE_DIGEST,
    device: blob,
    operation: 'image import',
  });
}

export function imageNotFound(name: string): DevmapperError {
  return new DevmapperError(`no image named ${JSON.stringify(name)}`, { code: ErrorCodes.IMAGE_NOT_FOUND, device: name });
}

export function imagePlatform(source: string, want: string, have: string): DevmapperError {
  return new DevmapperError(`${source} has no image for ${want} (it has: ${have})`, { code: ErrorCodes.IMAGE_PLATFORM, device: source, operation: 'image import' });
}

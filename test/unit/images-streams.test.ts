/**
 * The image reader's parts, without a kernel: a tar read by its headers (long names, links),
 * zstd streams of several frames and broken ones, an import aborted inside a layer (nothing
 * of it left in the tree), and the image records database.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes } from '../../lib';
import { ImageRecords, type ImageRecord } from '../../lib/images/records';
import { resolveImage } from '../../lib/images/resolve';
import { openSource } from '../../lib/images/source';
import { parsePlatform } from '../../lib/images/platform';
import { decompressor } from '../../lib/images/streams';
import { indexTar } from '../../lib/images/tar-index';
import { applyBlob } from '../../lib/images/unpack';
import { buildImage, fixtureLayers, tarBuffer } from '../helpers/image-fixtures';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'images-streams-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a tar is indexed by its headers: PAX long names, hard and symbolic links resolved', async () => {
  const long = `${'deep/'.repeat(40)}file`;
  const t = await tarBuffer((p) => {
    p.entry({ name: long }, 'long-named');
    p.entry({ name: 'a/target' }, 'target bytes');
    p.entry({ name: 'a/hard', type: 'link', linkname: 'a/target' });
    p.entry({ name: 'b/sym', type: 'symlink', linkname: '../a/target' });
  });
  const path = join(dir, 'links.tar');
  await writeFile(path, t);
  const members = await indexTar(path);
  expect(members.get(long)?.size).toBe('long-named'.length);
  const src = await openSource(path);
  expect((await src.read(long)).toString()).toBe('long-named');
  expect((await src.read('a/hard')).toString()).toBe('target bytes');
  expect((await src.read('./b/sym')).toString()).toBe('target bytes');
  expect((await src.head('a/target', 6)).toString()).toBe('target');
  await expect(src.read('nope')).rejects.toMatchObject({ code: ErrorCodes.IMAGE_FORMAT });
});

async function decode(input: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const d = decompressor('zstd');
  d.on('data', (c: Buffer) => chunks.push(c));
  await pipeline(Readable.from([input]), d);
  return Buffer.concat(chunks);
}

test('zstd: several frames in a row decode to their concatenation; a cut stream is an error', async () => {
  const a = join(dir, 'a.txt');
  await writeFile(a, 'first frame, ');
  const b = join(dir, 'b.txt');
  await writeFile(b, 'second frame');
  const za = execFileSync('zstd', ['-q', '-c', a]);
  const zb = execFileSync('zstd', ['-q', '-c', b]);
  expect((await decode(Buffer.concat([za, zb]))).toString()).toBe('first frame, second frame');
  await expect(decode(za.subarray(0, za.length - 3))).rejects.toThrow(/zstd/);
});

test('a cut gzip layer is ERR_IMAGE_FORMAT and an abort inside a layer is ABORT_ERR; the tree is as it was', async () => {
  const path = join(dir, 'abort');
  await buildImage(path, { format: 'oci-dir', compression: 'gzip', layers: await fixtureLayers('a', { bigBytes: 4 * 2 ** 20 }) });
  const src = await openSource(path);
  const img = await resolveImage(src, { platform: parsePlatform('linux/amd64') });
  const tree = join(dir, 'abort-tree');
  await mkdir(tree);
  await writeFile(join(tree, 'keep'), 'was here');
  const ac = new AbortController();
  const p = applyBlob({ sn: null as never, src, signal: ac.signal, onBytes: (b) => b > 2 ** 20 && ac.abort() }, img.layers[0]!, tree);
  await expect(p).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
  expect(await readdir(tree)).toEqual(['keep']);

  const blob = join(path, img.layers[0]!.file);
  const bytes = await readFile(blob);
  await writeFile(blob, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await expect(applyBlob({ sn: null as never, src }, { ...img.layers[0]!, size: Math.floor(bytes.length / 2) }, tree)).rejects.toMatchObject({ code: ErrorCodes.IMAGE_FORMAT });
  expect(await readdir(tree)).toEqual(['keep']);

  // A plain layer whose bytes are not a tar at all.
  await writeFile(blob, Buffer.alloc(4096, 0x41));
  await expect(applyBlob({ sn: null as never, src }, { ...img.layers[0]!, size: 4096 }, tree)).rejects.toMatchObject({ code: ErrorCodes.IMAGE_FORMAT });
  expect(await readdir(tree)).toEqual(['keep']);
});

test('image records: put, get, list, replace, delete; they survive reopening', async () => {
  const root = join(dir, 'records-root');
  const rec = (name: string, top: string): ImageRecord => ({
    name,
    format: 'oci',
    manifestDigest: `sha256:${'1'.repeat(64)}`,
    configDigest: `sha256:${'2'.repeat(64)}`,
    platform: 'linux/amd64',
    diffIds: [top],
    chainIds: [top],
    config: { config: { Cmd: ['/bin/sh'] } },
    created: new Date(1_700_000_000_000),
  });
  await ImageRecords.open(root, (db) => {
    db.put(rec('b', 'sha256:b'));
    db.put(rec('a', 'sha256:a'));
  });
  expect(await ImageRecords.open(root, (db) => db.all().map((r) => r.name))).toEqual(['a', 'b']);
  await ImageRecords.open(root, (db) => db.put(rec('a', 'sha256:a2')));
  expect(await ImageRecords.open(root, (db) => db.get('a'))).toEqual(rec('a', 'sha256:a2'));
  expect(await ImageRecords.open(root, (db) => [db.delete('a'), db.delete('a')])).toEqual([true, false]);
  expect(await ImageRecords.open(root, (db) => db.get('a'))).toBeNull();
});

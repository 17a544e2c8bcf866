/**
 * The image reader without a kernel: the three formats resolve to the same layers and chain
 * IDs, platforms are chosen from nested indexes, damaged JSON blobs are refused with their
 * codes, and every layer (plain, gzip, zstd) streams through its digest checks into a plain
 * directory, giving the same tree each way; a damaged layer blob is ERR_IMAGE_DIGEST.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, images, layers } from '../../lib';
import { parsePlatform } from '../../lib/images/platform';
import { resolveImage } from '../../lib/images/resolve';
import { openSource } from '../../lib/images/source';
import { applyBlob } from '../../lib/images/unpack';
import { buildImage, EXPECTED_FILES, REMOVED_PATHS, sha, type FixtureCompression, type FixtureFormat } from '../helpers/image-fixtures';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'images-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const amd64 = parsePlatform('linux/amd64');

test('chain IDs follow the OCI definition', () => {
  const a = `sha256:${'a'.repeat(64)}`;
  const b = `sha256:${'b'.repeat(64)}`;
  expect(images.chainIds([a])).toEqual([a]);
  expect(images.chainIds([a, b])).toEqual([a, `sha256:${sha(`${a} ${b}`)}`]);
  expect(images.chainIds([])).toEqual([]);
});

test('platforms parse and match', () => {
  expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  expect(() => parsePlatform('linux')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  expect(images.platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' })).toBe(true);
  expect(images.platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(false);
  expect(images.platformMatches(amd64, { os: 'windows', architecture: 'amd64' })).toBe(false);
});

const CASES: [FixtureFormat, FixtureCompression][] = [
  ['docker', 'none'],
  ['oci-dir', 'none'],
  ['oci-dir', 'gzip'],
  ['oci-tar', 'zstd'],
  ['oci-tar', 'gzip'],
];

describe.each(CASES)('%s with %s layers', (format, compression) => {
  test('resolves to the layers and chain IDs, and unpacks to the expected tree', async () => {
    const path = join(dir, `${format}-${compression}${format === 'oci-dir' ? '' : '.tar'}`);
    const built = await buildImage(path, { format, compression });
    const src = await openSource(path);
    const img = await resolveImage(src, { platform: amd64 });
    expect(img.format).toBe(format === 'docker' ? 'docker' : 'oci');
    expect(img.sourceName).toBe('test/image:latest');
    expect(img.layers.map((l) => l.diffId)).toEqual(built.diffIds);
    expect(img.chainIds).toEqual(images.chainIds(built.diffIds));
    expect(img.platform).toEqual({ os: 'linux', architecture: 'amd64', variant: '' });
    const tree = join(dir, `tree-${format}-${compression}`);
    await mkdir(tree);
    for (const l of img.layers) await applyBlob({ sn: null as never, src }, l, tree);
    for (const [p, content] of Object.entries(EXPECTED_FILES)) expect(await readFile(join(tree, p), 'utf8')).toBe(content);
    for (const p of REMOVED_PATHS) await expect(readFile(join(tree, p))).rejects.toMatchObject({ code: expect.stringMatching(/ENOENT|EISDIR/) });
    // No scratch directory of the apply is left in the root.
    expect((await readdir(tree)).sort()).toEqual(['app', 'bin', 'etc', 'usr', 'var']);
  });
});

test('every format and compression gives the same tree (contents, modes, owners, times, links)', async () => {
  const [first, ...rest] = await Promise.all(CASES.map(([f, c]) => layers.readTree(join(dir, `tree-${f}-${c}`))));
  for (const t of rest) expect(layers.treeChanges(t, first!)).toEqual([]);
  expect(layers.flatten(first!).get('/bin/tool-link')?.inode).toBe(layers.flatten(first!).get('/bin/tool')?.inode);
});

test('a nested index picks the platform asked for, and says which it has when none fits', async () => {
  const path = join(dir, 'multi');
  await buildImage(path, { format: 'oci-dir', multiPlatform: true });
  const src = await openSource(path);
  const amd = await resolveImage(src, { platform: amd64 });
  const arm = await resolveImage(src, { platform: parsePlatform('linux/arm64') });
  expect(amd.platform.architecture).toBe('amd64');
  expect(arm.platform.architecture).toBe('arm64');
  expect(amd.manifestDigest).not.toBe(arm.manifestDigest);
  await expect(resolveImage(src, { platform: parsePlatform('linux/s390x') })).rejects.toMatchObject({
    code: ErrorCodes.IMAGE_PLATFORM,
    message: expect.stringContaining('linux/arm64, linux/amd64'),
  });
});

test('damaged sources are refused with their codes', async () => {
  const path = join(dir, 'damaged');
  const built = await buildImage(path, { format: 'oci-dir' });
  const src = await openSource(path);
  const img = await resolveImage(src, { platform: amd64 });
  // A config whose bytes changed: ERR_IMAGE_DIGEST at resolve.
  const configFile = join(path, 'blobs', 'sha256', img.configDigest.slice(7));
  const config = await readFile(configFile);
  await writeFile(configFile, Buffer.concat([config, Buffer.from(' ')]));
  await expect(resolveImage(src, { platform: amd64 })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_DIGEST });
  await writeFile(configFile, config);
  // One byte of layer 0's file content changed: the tar still reads, the digest does not match.
  const blobFile = join(path, built.layerFiles[0]!);
  const blob = await readFile(blobFile);
  const at = blob.indexOf('hello from layer 0');
  blob[at] = 'j'.charCodeAt(0);
  await writeFile(blobFile, blob);
  const tree = await mkdtemp(join(dir, 'damaged-tree-'));
  await expect(applyBlob({ sn: null as never, src }, img.layers[0]!, tree)).rejects.toMatchObject({ code: ErrorCodes.IMAGE_DIGEST });
  // Not an image at all.
  await writeFile(join(dir, 'plain.tar'), Buffer.alloc(2048, 7));
  await expect(openSource(join(dir, 'plain.tar'))).rejects.toMatchObject({ code: ErrorCodes.IMAGE_FORMAT });
  await expect(resolveImage(await openSource(dir), { platform: amd64 })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_FORMAT });
});

test('a wrong diff ID is ERR_IMAGE_DIGEST for that layer', async () => {
  const path = join(dir, 'wrong-diff.tar');
  await buildImage(path, { format: 'oci-tar', compression: 'gzip', wrongDiffId: `sha256:${'0'.repeat(64)}` });
  const src = await openSource(path);
  const img = await resolveImage(src, { platform: amd64 });
  const tree = await mkdtemp(join(dir, 'wrong-diff-'));
  await applyBlob({ sn: null as never, src }, img.layers[0]!, tree);
  await expect(applyBlob({ sn: null as never, src }, img.layers[1]!, tree)).rejects.toMatchObject({ code: ErrorCodes.IMAGE_DIGEST, device: `sha256:${'0'.repeat(64)}` });
});

test("the CLI's progress line", async () => {
  const { progressLine } = await import('../../lib/cli/images');
  const p = { layer: 1, layers: 3, chainId: 'sha256:x', bytes: 2 * 2 ** 20, totalBytes: 8 * 2 ** 20 };
  expect(progressLine({ ...p, state: 'unpacking' }, 8)).toBe('layer 2/3 [##......] 2.0/8.0 MiB');
  expect(progressLine({ ...p, state: 'reused' }, 4)).toBe('layer 2/3 [#...] reused');
  expect(progressLine({ ...p, bytes: 0, totalBytes: 0, state: 'done' }, 4)).toBe('layer 2/3 [####] 0.0/0.0 MiB');
});

test('a source with both index.json and manifest.json (newer docker save) is read as the OCI layout', async () => {
  const path = join(dir, 'both');
  await buildImage(path, { format: 'oci-dir', compression: 'gzip' });
  await writeFile(join(path, 'manifest.json'), JSON.stringify([{ Config: 'missing.json', RepoTags: ['x:y'], Layers: [] }]));
  const img = await resolveImage(await openSource(path), { platform: amd64 });
  expect(img.format).toBe('oci');
  expect(img.layers).toHaveLength(3);
});

test('a docker save tar whose image is for another platform is ERR_IMAGE_PLATFORM', async () => {
  const path = join(dir, 'docker.tar');
  await buildImage(path, { format: 'docker' });
  await expect(resolveImage(await openSource(path), { platform: parsePlatform('linux/arm64') })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_PLATFORM, message: expect.stringContaining('linux/amd64') });
  await expect(resolveImage(await openSource(path), { platform: amd64, ref: 'not/there:1' })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_FORMAT });
});

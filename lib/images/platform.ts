/** Platforms ("linux/arm64/v8") and which manifest of an index fits one. */
import { invalidArgument } from '../errors';

/** An image's platform, as the OCI spec names its parts. */
export interface Platform {
  /** 'linux', ... */
  os: string;
  /** Go's names: 'amd64', 'arm64', ... */
  architecture: string;
  /** '' when not given: then any variant fits. */
  variant: string;
}

/** Node's process.arch in the OCI spec's (Go's) words. */
const GOARCH: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The default platform: linux and this machine's architecture. */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch, variant: '' };
}

/** "os/arch[/variant]" → a Platform; undefined → the host's. */
export function parsePlatform(text: string | undefined): Platform {
  if (text === undefined) return hostPlatform();
  const parts = typeof text === 'string' ? text.split('/') : [];
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p)))
    throw invalidArgument('platform', 'os/architecture[/variant], such as linux/amd64 or linux/arm64/v8', text);
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] ?? '' };
}

/** A Platform as "os/arch[/variant]". */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== '').join('/');
}

/**
 * Whether what an index or config says fits the platform asked for. A variant asked for must
 * match; none asked for fits any (arm64's v8 is the usual one left out).
 */
export function platformMatches(want: Platform, have: { os?: unknown; architecture?: unknown; variant?: unknown }): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant === '') return true;
  const v = typeof have.variant === 'string' ? have.variant : '';
  return v === want.variant || (v === '' && want.architecture === 'arm64' && want.variant === 'v8');
}

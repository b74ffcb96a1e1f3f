// Sorts the samples of `perf script` (perf record -g on one server process) into a few
// categories by their leaf frame, and prints one `PREFIX_CATEGORY=SHARE` line per category
// (SHARE: the fraction of all samples, 0..1) plus `PREFIX_samples=N`. Kernel samples whose
// call chain passes through sock_def_readable/try_to_wake_up are counted as "wake" (the
// server waking the load generator's thread on the other core, an IPI in a VM).
// Usage: perf script -i perf.data | node profile.mjs PREFIX
import { createInterface } from 'node:readline';

const prefix = process.argv[2] ?? 'profile';
export const CATEGORIES = ['crypto', 'token', 'http', 'libc', 'wake', 'kernel', 'other'];

function classify(frames) {
  const leaf = frames[0] ?? { sym: '', dso: '' };
  const { sym, dso } = leaf;
  if (dso.includes('kernel')) {
    const waking = frames.some((f) => /sock_def_readable|try_to_wake_up|ep_poll_callback|__wake_up/.test(f.sym));
    return waking ? 'wake' : 'kernel';
  }
  // aws-lc's exported symbols carry a versioned prefix; its static helpers (bn_*, sha256_*) do not.
  if (/^aws_lc_|aws_lc_rs::|^(bn|BN|rsa|RSA|sha256|SHA256|CRYPTO|EVP|OPENSSL|constant_time)_/.test(sym)) return 'crypto';
  if (/tessera_guard|tessera_jose|serde|base64|core::str::converts::from_utf8|UniqueKeys|btree|BTreeMap/.test(sym)) return 'token';
  if (/hyper|httparse|^http::|<http::|axum|tower|tokio|mio|bytes::|matchit/.test(sym)) return 'http';
  if (/libc\.so|ld-linux|vdso/.test(dso)) return 'libc';
  return 'other';
}

const counts = Object.fromEntries(CATEGORIES.map((c) => [c, 0]));
let total = 0;
let frames = null;
const flush = () => {
  if (frames) {
    counts[classify(frames)] += 1;
    total += 1;
  }
  frames = null;
};

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line.trim() === '') {
    flush();
  } else if (/^\s/.test(line)) {
    // "\t    ffffffff8205c440 ip_finish_output+0x0 ([kernel.kallsyms])"
    const m = line.match(/^\s+[0-9a-f]+\s+(.*?)(?:\+0x[0-9a-f]+)?\s+\((.*)\)\s*$/);
    if (frames && m) frames.push({ sym: m[1], dso: m[2] });
  } else {
    flush();
    frames = [];
  }
}
flush();

console.log(`${prefix}_samples=${total}`);
for (const c of CATEGORIES) console.log(`${prefix}_${c}=${total ? (counts[c] / total).toFixed(4) : 0}`);

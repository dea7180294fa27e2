// V8 flags the server's Node process starts with: `npm start`, the Docker image and the bench
// pass them (test/node-flags.test.ts keeps the three the same). Node refuses them in NODE_OPTIONS.
//
// --initial-old-space-size: the server's live heap is small (about 35 MB with 9 participants)
// while it allocates fast (packets, frames), and V8 sizes the old generation from the live heap,
// so it ran a major GC about once a second, each marking the whole heap on helper threads. Starting
// with 128 MB of old space: 3 major GCs in 100 s with 9 participants, helper threads 0.018 cores
// instead of 0.05-0.13 (bench/README, "What native/srtp and the heap flag save"). The cost is up
// to about 100 MB more resident memory between collections.
export const SERVER_NODE_FLAGS: readonly string[] = ["--initial-old-space-size=128"];

//! What limits each figure, from profiling the services under the harness's load
//! (`perf record -p PID` on this 2-core machine), printed at the end of
//! `docs/BENCHMARKS.md`. Written by people: keep it true when the code changes.

pub const NOTES: &str = r#"
Profiles were taken with `perf record -p PID` on the service while the harness loaded it
(`bench all --only SCENARIO --seconds 20`). Figures in this section are shares of the
service's own CPU time; they vary by a few points from run to run.

**1. client_credentials.** OpenSSL's RSA signature is about 86 % of the idp's CPU on this
path. The rest is the price of serving HTTP: hyper, axum, the form and the JSON (about
6 %), the kernel (loopback sockets) and memory allocation. Nothing touches the database
any more: the client is read once per 5 s and the caller's throttle state once per
second (each was a SQLite round trip through sqlx's worker thread on every token), no
row is written, and the secret is compared as a SHA-256 hash. The signature is made on
the worker thread that serves the request: handing it to tokio's blocking pool (as
before) cost a thread wake-up and a context switch per token, and the oversubscribed
blocking threads evicted each other's caches: 75 % of the bare rate and 1.25x its CPU
per token with the hand-off, 87 % and 1.1x without, and half the p99. Also tried and
dropped: one signature per core at a time behind a semaphore (about 60 %), and a
dedicated pool of one signing thread per core fed by a queue (no better than the
blocking pool in throughput).

**2. Password login.** Argon2id is about 80 % of the idp's CPU during the login load
(`compress_avx2` and `for_each_segment`; glibc's `memmove`, another 5 %, is mostly its
block copies). The rest of a sign-in: the RS256 signature of the access token (about
3 % here: this machine signs about 1,000 tokens per second per core, four times slower
than the issue's reference machine, while it hashes only twice as slowly), the kernel
(about 5 %: the SQLite statements of a sign-in, thread wake-ups, sockets) and the rest
(throttle read, the session row and refresh token, the audit rows, HTTP, JSON). The
Argon2id work itself also costs a few percent more inside the server than alone, as it
shares the two cores with that work. So logins/s land at 80-90 % of the bare rate
depending on the run: the 10 % the target leaves for everything but the hash is about
what a sign-in's signature and storage cost on this machine. Also, this scenario signs
one user in over and over, so past `IDP_MAX_SESSIONS_PER_USER` (10) every sign-in also
ends the oldest session (an update, its grants revoked, an audit row): work a real mix
of users rarely does.
Fixed here: each hash used to allocate its 19 MiB (the argon2 crate's `hash_password`
and `verify_password`), and freed buffers stayed in glibc's per-thread arenas: the idp
peaked at 0.9 GiB and spent twice the bare CPU per login (page faults, zeroing). Now
the hashes run on hashing threads of the idp's own, one per core by default (there
were four hashes at once: four 19 MiB buffers on 2 cores break 60 MiB for no
throughput), each reusing one buffer, mapped on its own so freeing it returns it to the
system, and freeing it after 10 s without a hash. On tokio's blocking pool (before) a
hash landed on whichever of three or four threads was free, its buffer with it, and
the Argon2id work cost about 5 % more than alone; on a thread that keeps its buffer it
costs 1-3 % more.
A sign-in reads both throttle counters (address and account) in one
statement, and deletes the account's counter only when there is one (it used to run a
DELETE on every successful sign-in).

**3. `GET /users/me`.** Three costs dominated: the RSA verification of the token (about
110 µs of CPU per request), the profile read through sqlx (about 70 µs on SQLite: a
channel round trip to the connection's worker thread for the query, another for the
ping sqlx sent whenever a connection left the pool, SQLite's file locks; on PostgreSQL
the query costs the PostgreSQL server process the same cores), and a `getrandom`
system call per request id. Now: verified tokens are cached (keyed by a hash of the
token, never past `exp`, dropped with their key); profiles are cached by id, kept true
by invalidation after every write and, on PostgreSQL, by `LISTEN`/`NOTIFY` between
instances (bypassed whenever the listener is down); sqlx pings only PostgreSQL
connections idle for 5 s or more. What is left is HTTP, the middleware (request id,
trace span, timeout, headers), the bearer parsing and the two cache lookups.

**4. `/jwks` and discovery.** Both are answered from memory (the JWKS is prebuilt
bytes with an ETag); what they cost beyond the bare handler is the shared middleware
(request id, trace span, timeout, `nosniff`) and the idp's larger router.

**5. Memory and start-up.** Idle, each service is 11-17 MiB: mostly the binary's code
and OpenSSL. Under the login load the idp holds two 19 MiB Argon2id buffers (one per
hashing thread, 38 MiB) and about 20 MiB besides: 8-9 MiB of its own code, 6 MiB of
shared libraries (3.7 MiB of it libcrypto) and 4-5 MiB of heap, for its 13 threads (two
tokio workers, two hashing threads, one per open SQLite connection); 58-60 MiB at the
peak, at the target's edge. The code is most of what is left: the kernel maps a
binary's pages 64 KiB at a time around each one touched, so a scattered 10 MiB `.text`
was 10 MiB resident. Built with fat LTO and one codegen unit (the release profile),
`.text` is 8.6 MB instead of 10.9 MB, and the idp 1.2 MiB smaller idle and 1.4 MiB at
the peak. SQLite's page cache is 256 KiB per pooled connection instead of 2 MiB (any
write invalidates it anyway, and the OS caches the file), which saved about 1 MiB. The
buffers are freed after 10 s without sign-ins, so the idp is back near its idle size
then. Tried and dropped: mimalloc as the global allocator (33 MiB idle, 86 MiB at the
peak: it keeps what it once used); fewer glibc arenas (`MALLOC_ARENA_MAX=2`) saved
2 MiB but can only be set from outside the process. What gets the peak clearly under
60 MiB is one hash at a time, at half the login throughput
(`IDP_MAX_CONCURRENT_HASHES=1`).
The resource server stays under 21 MiB. A cold start on an existing database
takes 10-30 ms; the idp's very first start on an empty database also generates its
RSA 2048 key, which takes from 0.1 s to over a second (key generation is random), and
the resource server used to spend 100 ms loading the system's CA certificates for its
JWKS client, which is now built on the first fetch.
"#;

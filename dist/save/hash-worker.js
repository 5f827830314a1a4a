import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:worker_threads"
const external_node_worker_threads_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:worker_threads");
;// CONCATENATED MODULE: external "node:crypto"
const external_node_crypto_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:crypto");
;// CONCATENATED MODULE: external "node:fs"
const external_node_fs_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");
;// CONCATENATED MODULE: ./build/src/key/hash-batch.js
/**
 * Hashing one batch of source files (hashing.ts says how and why), and the messages of the
 * hashing workers (hash-worker.ts): imported by both threads, so the worker runs this very code,
 * type-checked like the rest.
 */


/** Files at or above this size are hashed in chunks instead of being read whole. */
const LARGE_FILE_BYTES = 8 * 1024 * 1024;
/** The reusable read buffer's first size, and the chunk size for large files. */
const CHUNK_BYTES = 1024 * 1024;
/**
 * The ids of `rels` (relative to `root`, which ends with a separator), on whichever thread
 * calls it: hashing.ts for few files, hash-worker.ts for many.
 */
function hashBatch(root, rels, convs, format, largeBytes, pool) {
    const c = external_node_fs_namespaceObject.constants;
    const noFollow = c.O_NOFOLLOW;
    const flags = c.O_RDONLY | (noFollow ?? 0) | (c.O_NONBLOCK ?? 0);
    const changed = (abs) => new Error(`${abs} changed while it was being hashed`);
    const link = (abs) => {
        const target = Buffer.from(external_node_fs_namespaceObject.readlinkSync(abs), 'utf8');
        return `link:${external_node_crypto_namespaceObject.createHash(format).update(`blob ${target.length}\0`).update(target).digest('hex')}`;
    };
    const gather = (st, b, len) => {
        for (let i = 0; i < len; i++) {
            const ch = b[i];
            if (st.cr) {
                st.cr = false;
                if (ch === 10) {
                    st.crlf++;
                    continue;
                }
                st.lonecr++;
            }
            if (ch === 13)
                st.cr = true;
            else if (ch === 10)
                continue;
            else if (ch === 127)
                st.nonprintable++;
            else if (ch < 32) {
                if (ch === 8 || ch === 9 || ch === 27 || ch === 12)
                    st.printable++;
                else {
                    if (ch === 0)
                        st.nul++;
                    st.nonprintable++;
                }
            }
            else
                st.printable++;
        }
        if (len > 0)
            st.last = b[len - 1];
    };
    /** Whether git's clean conversion drops any CR from content with these stats. */
    const converts = (st, conv) => {
        if (st.cr)
            st.lonecr++; // a CR at the very end
        st.cr = false;
        if (st.crlf === 0)
            return false;
        if (conv === 2)
            return true;
        const nonprintable = st.nonprintable - (st.last === 26 ? 1 : 0); // a final DOS EOF
        return st.lonecr === 0 && st.nul === 0 && st.printable >> 7 >= nonprintable;
    };
    const fresh = () => ({
        crlf: 0,
        lonecr: 0,
        nul: 0,
        printable: 0,
        nonprintable: 0,
        cr: false,
        last: -1,
    });
    /**
     * Drops each CR before an LF from b[0, len) in place; a final CR is left out and `held.cr`
     * set (the caller decides on it with the next chunk). Starts with held.cr false.
     */
    const strip = (b, len, held) => {
        let n = 0;
        for (let i = 0; i < len; i++) {
            const ch = b[i];
            if (held.cr) {
                held.cr = false;
                if (ch !== 10)
                    b[n++] = 13; // n < i: the held CR (at i - 1) was not written
            }
            if (ch === 13)
                held.cr = true;
            else
                b[n++] = ch;
        }
        return n;
    };
    /** Reads the whole of fd into pool.buf from `at`; the count read (one more: it grew). */
    const readAll = (fd, at, size, abs) => {
        const end = at + size;
        if (pool.buf.length <= end) {
            pool.buf = Buffer.allocUnsafe(Math.min(Math.max(end + 1, 2 * pool.buf.length), largeBytes + 64));
        }
        let n = at;
        for (;;) {
            const got = external_node_fs_namespaceObject.readSync(fd, pool.buf, n, end + 1 - n, null);
            if (got === 0)
                break;
            n += got;
            if (n >= end)
                break; // a read short of what was asked: the end of the file
        }
        if (n !== end)
            throw changed(abs);
        return n;
    };
    const one = (abs, conv) => {
        if (noFollow === undefined && external_node_fs_namespaceObject.lstatSync(abs).isSymbolicLink())
            return link(abs);
        let fd;
        try {
            fd = external_node_fs_namespaceObject.openSync(abs, flags);
        }
        catch (err) {
            if (err.code !== 'ELOOP')
                throw err;
            return link(abs);
        }
        try {
            const st = external_node_fs_namespaceObject.fstatSync(fd);
            if (!st.isFile())
                return null;
            if (st.size >= largeBytes) {
                // In chunks. The bytes as they are first; with a conversion, a file with a CR in it is
                // then read again to decide it, and once more to hash what git would store.
                const h = external_node_crypto_namespaceObject.createHash(format).update(`blob ${st.size}\0`);
                let sawCR = false;
                let total = 0;
                for (;;) {
                    const got = external_node_fs_namespaceObject.readSync(fd, pool.buf, 0, pool.buf.length, total);
                    if (got === 0)
                        break;
                    total += got;
                    h.update(pool.buf.subarray(0, got));
                    if (conv !== 0 && !sawCR)
                        sawCR = pool.buf.subarray(0, got).indexOf(13) >= 0;
                }
                if (total !== st.size)
                    throw changed(abs);
                if (!sawCR)
                    return h.digest('hex');
                const stats = fresh();
                total = 0;
                for (;;) {
                    const got = external_node_fs_namespaceObject.readSync(fd, pool.buf, 0, pool.buf.length, total);
                    if (got === 0)
                        break;
                    total += got;
                    gather(stats, pool.buf, got);
                }
                if (total !== st.size)
                    throw changed(abs);
                if (!converts(stats, conv))
                    return h.digest('hex');
                const size = st.size - stats.crlf;
                const c = external_node_crypto_namespaceObject.createHash(format).update(`blob ${size}\0`);
                const held = { cr: false };
                let hashed = 0;
                total = 0;
                for (;;) {
                    const got = external_node_fs_namespaceObject.readSync(fd, pool.buf, 0, pool.buf.length, total);
                    if (got === 0)
                        break;
                    total += got;
                    if (held.cr && pool.buf[0] !== 10) {
                        c.update('\r'); // a CR that ended the last chunk, and no LF after it
                        hashed++;
                    }
                    held.cr = false;
                    const n = strip(pool.buf, got, held);
                    hashed += n;
                    c.update(pool.buf.subarray(0, n));
                }
                if (held.cr) {
                    c.update('\r');
                    hashed++;
                }
                if (total !== st.size || hashed !== size)
                    throw changed(abs);
                return c.digest('hex');
            }
            if (conv !== 0) {
                // The content first, then the header of its cleaned size in front of it.
                const room = 24;
                readAll(fd, room, st.size, abs);
                const content = pool.buf.subarray(room, room + st.size);
                let size = content.length;
                const stats = fresh();
                if (content.indexOf(13) >= 0)
                    gather(stats, content, content.length);
                if (stats.crlf > 0 && converts(stats, conv)) {
                    const held = { cr: false };
                    size = strip(content, content.length, held);
                    if (held.cr)
                        content[size++] = 13; // a final CR stays
                }
                const header = Buffer.from(`blob ${size}\0`, 'latin1');
                header.copy(pool.buf, room - header.length);
                return external_node_crypto_namespaceObject.hash(format, pool.buf.subarray(room - header.length, room + size), 'hex');
            }
            // Header and content side by side, and one byte of room: reading it means the file grew.
            const header = `blob ${st.size}\0`;
            const end = header.length + st.size;
            if (pool.buf.length <= end) {
                pool.buf = Buffer.allocUnsafe(Math.min(Math.max(end + 1, 2 * pool.buf.length), largeBytes + 64));
            }
            const n = pool.buf.write(header, 0, 'latin1');
            readAll(fd, n, st.size, abs);
            return external_node_crypto_namespaceObject.hash(format, pool.buf.subarray(0, end), 'hex');
        }
        finally {
            external_node_fs_namespaceObject.closeSync(fd);
        }
    };
    const ids = [];
    for (let i = 0; i < rels.length; i++) {
        const rel = rels[i];
        const abs = root + rel;
        try {
            ids.push(one(abs, convs[i] ?? 0));
        }
        catch (err) {
            const code = err?.code;
            if (code === 'ENOENT' || code === 'ENOTDIR') {
                ids.push(null); // gone since it was listed
                continue;
            }
            const message = String(err.message ?? err);
            return { ids, error: message.startsWith(abs) ? message : `${abs}: ${message}` };
        }
    }
    return { ids };
}
//# sourceMappingURL=hash-batch.js.map
;// CONCATENATED MODULE: ./build/src/key/hash-worker.js
/**
 * A source-hashing worker thread (started by hashing.ts's BlobHasher from the file beside it:
 * build/src/key/ in tests, dist/<entry>/ in the bundle). Each HashRequest is answered, in
 * order, with the HashReply `hashBatch` gives.
 */


const port = external_node_worker_threads_namespaceObject.parentPort;
if (port === null)
    throw new Error('hash-worker.js runs only as a worker thread (hashing.ts)');
const { root, format } = external_node_worker_threads_namespaceObject.workerData;
const pool = { buf: Buffer.allocUnsafe(CHUNK_BYTES) };
port.on('message', ({ rels, convs }) => {
    const reply = hashBatch(root, rels, convs, format, LARGE_FILE_BYTES, pool);
    port.postMessage(reply);
});
//# sourceMappingURL=hash-worker.js.map

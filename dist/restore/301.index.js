import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
export const id = 301;
export const ids = [301,857];
export const modules = {

/***/ 2857:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

function __ncc_wildcard$0 (arg) {
  if (arg === "Release") return __webpack_require__(3707);
  else if (arg === "Release/obj.target") return __webpack_require__(8648);
}
const buildType =
  process.config.target_defaults?.default_configuration ?? 'Release';
module.exports = __ncc_wildcard$0(buildType);


/***/ }),

/***/ 9625:
/***/ ((__unused_webpack_module, exports, __webpack_require__) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.CompressStream = exports.Compressor = void 0;
const assert_1 = __webpack_require__(2613);
const stream_1 = __webpack_require__(2203);
const binding = __webpack_require__(2857);
const util_1 = __webpack_require__(8037);
const PARAM_MAPPERS = {
    compressionLevel: util_1.mapNumber,
    // Advanced compression options
    windowLog: util_1.mapNumber,
    hashLog: util_1.mapNumber,
    chainLog: util_1.mapNumber,
    searchLog: util_1.mapNumber,
    minMatch: util_1.mapNumber,
    targetLength: util_1.mapNumber,
    strategy: (0, util_1.mapEnum)(binding.Strategy),
    targetCBlockSize: util_1.mapNumber,
    // Long-distance matching options
    enableLongDistanceMatching: util_1.mapBoolean,
    ldmHashLog: util_1.mapNumber,
    ldmMinMatch: util_1.mapNumber,
    ldmBucketSizeLog: util_1.mapNumber,
    ldmHashRateLog: util_1.mapNumber,
    // Frame parameters
    contentSizeFlag: util_1.mapBoolean,
    checksumFlag: util_1.mapBoolean,
    dictIDFlag: util_1.mapBoolean,
    // Multi-threading parameters
    nbWorkers: util_1.mapNumber,
    jobSize: util_1.mapNumber,
    overlapLog: util_1.mapNumber,
};
function updateCCtxParameters(cctx, parameters) {
    const mapped = (0, util_1.mapParameters)(binding.CParameter, PARAM_MAPPERS, parameters);
    for (const [param, value] of mapped) {
        cctx.setParameter(param, value);
    }
}
/**
 * High-level interface for customized single-pass Zstandard compression.
 *
 * @example Basic usage
 * ```
 * const cmp = new Compressor();
 * const result = cmp.compress(Buffer.from('your data here'));
 * ```
 *
 * @example Advanced usage
 * ```
 * const cmp = new Compressor();
 * cmp.setParameters({compressionLevel: 9});
 * cmp.loadDictionary(fs.readFileSync('path/to/dictionary.dct'));
 * const result = cmp.compress(Buffer.from('your data here'));
 * ```
 */
class Compressor {
    cctx = new binding.CCtx();
    scratchBuf = null;
    scratchLen = -1;
    /**
     * Compress the data in `buffer` with the configured dictionary/parameters.
     *
     * @param buffer - Data to compress
     * @returns A new Buffer containing the compressed data
     */
    compress(buffer) {
        let dest;
        if (this.scratchBuf && buffer.length <= this.scratchLen) {
            dest = this.scratchBuf;
        }
        else {
            dest = Buffer.allocUnsafe(binding.compressBound(buffer.length));
        }
        const length = this.cctx.compress2(dest, buffer);
        let result;
        if (length < 0.75 * dest.length) {
            // Destination buffer is too wasteful, trim by copying
            result = Buffer.from(dest.subarray(0, length));
            // Save the old buffer for scratch if it's small enough
            if (dest.length <= 128 * 1024 && buffer.length > this.scratchLen) {
                this.scratchBuf = dest;
                this.scratchLen = buffer.length;
            }
        }
        else {
            // Destination buffer is about the right size, return it directly
            result = dest.subarray(0, length);
            // Make sure we don't re-use the scratch buffer if we're returning it
            if (Object.is(dest, this.scratchBuf)) {
                this.scratchBuf = null;
                this.scratchLen = -1;
            }
        }
        return result;
    }
    /**
     * Load a compression dictionary from the provided buffer.
     *
     * The loaded dictionary will be used for all future {@link compress} calls
     * until removed or replaced. Passing an empty buffer to this function will
     * remove a previously loaded dictionary.
     *
     * Set any parameters you want to set before loading a dictionary, since
     * parameters can't be changed while a dictionary is loaded.
     */
    loadDictionary(data) {
        // TODO: Compression parameters get locked in on next compress operation,
        // and are cleared by setParameters. There should be some checks to ensure
        // users have a safe usage pattern.
        this.cctx.loadDictionary(data);
    }
    /**
     * Reset the compressor state to only the provided parameters.
     *
     * Any loaded dictionary will be cleared, and any parameters not specified
     * will be reset to their default values.
     */
    setParameters(parameters) {
        this.cctx.reset(binding.ResetDirective.parameters);
        this.updateParameters(parameters);
    }
    /**
     * Modify compression parameters.
     *
     * Parameters not specified will be left at their current values. Changing
     * parameters is not possible while a dictionary is loaded.
     */
    updateParameters(parameters) {
        updateCCtxParameters(this.cctx, parameters);
    }
}
exports.Compressor = Compressor;
const BUF_SIZE = binding.cStreamOutSize();
const dummyFlushBuffer = Buffer.alloc(0);
const dummyEndBuffer = Buffer.alloc(0);
/**
 * High-level interface for streaming Zstandard compression.
 *
 * Implements the standard Node stream transformer interface, so can be used
 * with `.pipe` or any other streaming interface.
 *
 * @example Basic usage
 * ```
 * import { pipeline } from 'stream/promises';
 * const cmp = new CompressStream();
 * await pipeline(
 *   fs.createReadStream('data.txt'),
 *   new CompressStream(),
 *   fs.createWriteStream('data.txt.zst'),
 * );
 * ```
 */
class CompressStream extends stream_1.Transform {
    cctx = new binding.CCtx();
    buffer = Buffer.allocUnsafe(BUF_SIZE);
    // TODO: Allow user to specify a dictionary
    /**
     * Create a new streaming compressor with the specified parameters.
     *
     * @param parameters - Compression parameters
     */
    constructor(parameters = {}) {
        // TODO: autoDestroy doesn't really work on Transform, we should consider
        // calling .destroy ourselves when necessary.
        super({ autoDestroy: true });
        updateCCtxParameters(this.cctx, parameters);
    }
    // TODO: Provide API to allow changing parameters mid-frame in MT mode
    // TODO: Provide API to allow changing parameters between frames
    /**
     * End the current Zstandard frame without ending the stream.
     *
     * Frames are compressed independently, so this can be used to create a
     * "seekable" archive, or to provide more resilience to data corruption by
     * isolating parts of the file from each other.
     *
     * The optional `callback` is invoked with the same semantics as it is for a
     * a stream write.
     */
    endFrame(callback) {
        this.write(dummyEndBuffer, callback);
    }
    /**
     * Flush internal compression buffers to the stream.
     *
     * Ensures that a receiver can decompress all bytes written so far without
     * as much negative impact to compression as {@link endFrame}.
     *
     * The optional `callback` is invoked with the same semantics as it is for a
     * a stream write.
     */
    flush(callback) {
        this.write(dummyFlushBuffer, callback);
    }
    doCompress(chunk, endType) {
        const flushing = endType !== binding.EndDirective.continue;
        for (;;) {
            const [ret, produced, consumed] = this.cctx.compressStream2(this.buffer, chunk, endType);
            if (produced > 0) {
                this.push(this.buffer.subarray(0, produced));
                this.buffer = Buffer.allocUnsafe(Math.max(BUF_SIZE, ret));
            }
            chunk = chunk.subarray(consumed);
            if (chunk.length == 0 && (!flushing || ret == 0))
                return;
        }
    }
    /** @internal */
    _transform(chunk, _encoding, done) {
        try {
            // The Writable machinery is responsible for converting to a Buffer
            (0, assert_1.strict)(chunk instanceof Buffer);
            // Handle flushes indicated by special dummy buffers
            let endType = binding.EndDirective.continue;
            if (Object.is(chunk, dummyFlushBuffer))
                endType = binding.EndDirective.flush;
            else if (Object.is(chunk, dummyEndBuffer))
                endType = binding.EndDirective.end;
            this.doCompress(chunk, endType);
        }
        catch (err) {
            done(err);
            return;
        }
        done();
        return;
    }
    /** @internal */
    _flush(done) {
        try {
            this.doCompress(dummyEndBuffer, binding.EndDirective.end);
        }
        catch (err) {
            done(err);
            return;
        }
        done();
        return;
    }
}
exports.CompressStream = CompressStream;


/***/ }),

/***/ 1666:
/***/ ((__unused_webpack_module, exports, __webpack_require__) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.DecompressStream = exports.Decompressor = void 0;
const assert_1 = __webpack_require__(2613);
const stream_1 = __webpack_require__(2203);
const binding = __webpack_require__(2857);
const util_1 = __webpack_require__(8037);
const PARAM_MAPPERS = {
    windowLogMax: util_1.mapNumber,
};
function updateDCtxParameters(dctx, parameters) {
    const mapped = (0, util_1.mapParameters)(binding.DParameter, PARAM_MAPPERS, parameters);
    for (const [param, value] of mapped) {
        dctx.setParameter(param, value);
    }
}
function getTotalContentSize(buffer) {
    let result = 0;
    let frame = buffer;
    while (frame.length > 0) {
        const contentSize = binding.getFrameContentSize(frame);
        if (contentSize === null)
            return null;
        result += contentSize;
        frame = frame.subarray(binding.findFrameCompressedSize(frame));
    }
    return result;
}
const BUF_SIZE = binding.dStreamOutSize();
/**
 * High-level interface for customized single-pass Zstandard decompression.
 *
 * @example Basic usage
 * ```
 * const dec = new Decompressor();
 * const result = dec.decompress(compressedBuffer);
 * ```
 *
 * @example Advanced usage
 * ```
 * const dec = new Decompressor();
 * dec.setParameters({windowLogMax: 24});
 * dec.loadDictionary(fs.readFileSync('path/to/dictionary.dct'));
 * const result = dec.decompress(compressedBuffer);
 * ```
 */
class Decompressor {
    dctx = new binding.DCtx();
    /**
     * Decompress the data in `buffer` with the configured dictionary/parameters.
     *
     * @param buffer - Compressed data
     * @returns A new buffer with the uncompressed data
     */
    decompress(buffer) {
        // TODO: Default allocation limit, with option to override
        // TODO: Add a way to supply a known size or size hint
        // Find total uncompressed size of all frames in buffer
        const contentSize = getTotalContentSize(buffer);
        // Fast path if we have a content size
        if (contentSize !== null) {
            const result = Buffer.allocUnsafe(contentSize);
            const decompressedSize = this.dctx.decompress(result, buffer);
            assert_1.strict.equal(decompressedSize, contentSize);
            return result;
        }
        // Fall back to streaming decompression
        const resultChunks = [];
        let remainingInput = buffer;
        while (remainingInput.length > 0) {
            // With the complete input available, decompressStream will gladly fill
            // an arbitrarily large buffer. We can exploit this to save native calls
            // by using the input size as a heuristic lower bound on the content size.
            //
            // This is conservative: it won't over-allocate memory by more than the
            // max of the input length and BUF_SIZE. It doesn't perform well in the
            // face of extremely high compression ratios, but the worst case is
            // equivalent to always allocating BUF_SIZE.
            const chunkLen = Math.max(BUF_SIZE, remainingInput.length);
            const chunk = Buffer.allocUnsafe(chunkLen);
            const [, produced, consumed] = this.dctx.decompressStream(chunk, remainingInput);
            resultChunks.push(chunk.subarray(0, produced));
            remainingInput = remainingInput.subarray(consumed);
        }
        // Concatenate the decompressed chunks (copies everything)
        return Buffer.concat(resultChunks);
    }
    /**
     * Load a compression dictionary from the provided buffer.
     *
     * The loaded dictionary will be used for all future {@link decompress} calls
     * until removed or replaced. Passing an empty buffer to this function will
     * remove a previously loaded dictionary.
     */
    loadDictionary(data) {
        this.dctx.loadDictionary(data);
    }
    /**
     * Reset the decompressor state to only the provided parameters.
     *
     * Any loaded dictionary will be cleared, and any parameters not specified
     * will be reset to their default values.
     */
    setParameters(parameters) {
        this.dctx.reset(binding.ResetDirective.parameters);
        this.updateParameters(parameters);
    }
    /**
     * Modify decompression parameters.
     *
     * Parameters not specified will be left at their current values.
     */
    updateParameters(parameters) {
        updateDCtxParameters(this.dctx, parameters);
    }
}
exports.Decompressor = Decompressor;
/**
 * High-level interface for streaming Zstandard decompression.
 *
 * Implements the standard Node stream transformer interface, so can be used
 * with `.pipe` or any other streaming interface.
 *
 * @example Basic usage
 * ```
 * import { pipeline } from 'stream/promises';
 * await pipeline(
 *   fs.createReadStream('data.txt.zst'),
 *   new DecompressStream(),
 *   fs.createWriteStream('data.txt'),
 * );
 * ```
 */
class DecompressStream extends stream_1.Transform {
    dctx = new binding.DCtx();
    inFrame = false;
    // TODO: Allow user to specify a dictionary
    /**
     * Create a new streaming decompressor with the specified parameters.
     *
     * @param parameters - Decompression parameters
     */
    constructor(parameters = {}) {
        // TODO: autoDestroy doesn't really work on Transform, we should consider
        // calling .destroy ourselves when necessary.
        super({ autoDestroy: true });
        updateDCtxParameters(this.dctx, parameters);
    }
    /** @internal */
    _transform(chunk, _encoding, done) {
        // TODO: Optimize this by looking at the frame header
        try {
            // The Writable machinery is responsible for converting to a Buffer
            (0, assert_1.strict)(chunk instanceof Buffer);
            let srcBuf = chunk;
            for (;;) {
                const dstBuf = Buffer.allocUnsafe(BUF_SIZE);
                const [ret, produced, consumed] = this.dctx.decompressStream(dstBuf, srcBuf);
                if (produced > 0)
                    this.push(dstBuf.subarray(0, produced));
                srcBuf = srcBuf.subarray(consumed);
                if (srcBuf.length === 0 && (produced < dstBuf.length || ret === 0)) {
                    this.inFrame = ret !== 0;
                    break;
                }
            }
        }
        catch (err) {
            done(err);
            return;
        }
        done();
        return;
    }
    /** @internal */
    _flush(done) {
        if (this.inFrame) {
            done(new Error('Stream ended in middle of compressed data frame'));
            return;
        }
        done();
        return;
    }
}
exports.DecompressStream = DecompressStream;


/***/ }),

/***/ 1301:
/***/ ((__unused_webpack_module, exports, __webpack_require__) => {


/**
 * This module (imported as `zstd-napi`) provides a high-level interface for
 * Zstandard compression and decompression. If you aren't sure what you need,
 * this is the right place to start!
 *
 * - The {@link compress} and {@link decompress} functions are the simplest,
 *   single-pass (in-memory) interface.
 * - The {@link Compressor} and {@link Decompressor} classes provide a
 *   single-pass interface with dictionary support.
 * - The {@link CompressStream} and {@link DecompressStream} classes provide
 *   a streaming interface.
 *
 * If you're looking for low-level bindings to the native Zstandard library,
 * see the {@link "binding" | binding module}.
 *
 * @module index
 */
Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.decompress = exports.compress = exports.Decompressor = exports.DecompressStream = exports.Compressor = exports.CompressStream = void 0;
var compress_1 = __webpack_require__(9625);
Object.defineProperty(exports, "CompressStream", ({ enumerable: true, get: function () { return compress_1.CompressStream; } }));
Object.defineProperty(exports, "Compressor", ({ enumerable: true, get: function () { return compress_1.Compressor; } }));
var decompress_1 = __webpack_require__(1666);
Object.defineProperty(exports, "DecompressStream", ({ enumerable: true, get: function () { return decompress_1.DecompressStream; } }));
Object.defineProperty(exports, "Decompressor", ({ enumerable: true, get: function () { return decompress_1.Decompressor; } }));
var simple_1 = __webpack_require__(8259);
Object.defineProperty(exports, "compress", ({ enumerable: true, get: function () { return simple_1.compress; } }));
Object.defineProperty(exports, "decompress", ({ enumerable: true, get: function () { return simple_1.decompress; } }));


/***/ }),

/***/ 8259:
/***/ ((__unused_webpack_module, exports, __webpack_require__) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.compress = compress;
exports.decompress = decompress;
const compress_1 = __webpack_require__(9625);
const decompress_1 = __webpack_require__(1666);
let defaultCompressor;
let defaultDecompressor;
/**
 * Compress `data` with Zstandard.
 *
 * Under the hood, this uses a shared, lazily-initialized {@link Compressor},
 * which minimizes overhead. If you need dictionary support, create your own
 * instance of that class.
 *
 * @param data - Buffer containing data to compress
 * @param parameters - Optional compression parameters
 * @returns Compressed data
 */
function compress(data, parameters = {}) {
    defaultCompressor ??= new compress_1.Compressor();
    defaultCompressor.setParameters(parameters);
    return defaultCompressor.compress(data);
}
/**
 * Decompress Zstandard-compressed `data`.
 *
 * Under the hood, this uses a shared, lazily-initialized {@link Decompressor},
 * which minimizes overhead. If you need dictionary support, create your own
 * instance of that class.
 *
 * @param data - Buffer containing compressed data
 * @param parameters - Optional decompression parameters
 * @returns Decompressed data
 */
function decompress(data, parameters = {}) {
    defaultDecompressor ??= new decompress_1.Decompressor();
    defaultDecompressor.setParameters(parameters);
    return defaultDecompressor.decompress(data);
}


/***/ }),

/***/ 8037:
/***/ ((__unused_webpack_module, exports) => {


Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.mapBoolean = exports.mapNumber = void 0;
exports.mapEnum = mapEnum;
exports.mapParameters = mapParameters;
exports.mapNumber = {
    validateInput: (value) => typeof value === 'number',
    mapValue: (value) => value,
};
function mapEnum(enumObj) {
    return {
        validateInput: (value) => typeof value === 'string' && value in enumObj,
        mapValue: (value) => enumObj[value],
    };
}
exports.mapBoolean = {
    validateInput: (value) => typeof value === 'boolean',
    mapValue: (value) => Number(value),
};
function mapParameter(name, mapper, value) {
    if (!mapper.validateInput(value)) {
        throw new TypeError(`Invalid type for parameter: ${name}`);
    }
    return mapper.mapValue(value);
}
function mapParameters(paramEnum, mapper, params) {
    const result = new Map();
    for (const [rawKey, value] of Object.entries(params)) {
        if (value !== undefined) {
            if (!(rawKey in mapper)) {
                throw new RangeError(`Invalid parameter name: ${rawKey}`);
            }
            const key = rawKey;
            result.set(paramEnum[key], mapParameter(key, mapper[key], value));
        }
    }
    return result;
}


/***/ }),

/***/ 3707:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)(__webpack_require__.ab + "build/Release/binding.node")

/***/ }),

/***/ 8648:
/***/ ((module, __unused_webpack_exports, __webpack_require__) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)(__webpack_require__.ab + "build/Release/obj.target/binding.node")

/***/ })

};

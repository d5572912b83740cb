internal import CFuzzZlib
import FuzzSupport
import Kiln

/// `Gzip.decompress` on arbitrary bytes, then `CSVTable.parse` on what it inflates: what `CSVTable.read` does
/// with a `.csv.gz` data file.
///
/// Properties, for every input that decompresses:
/// - compressed again by zlib's own writer (one gzip member) and decompressed, it gives the same bytes;
/// - the inflated bytes parse as CSV or throw, and a parsed table passes `checkParsedTable`.
///
/// zlib is a system library and not instrumented, so coverage guides the fuzzer through Kiln's member,
/// padding and error handling, not through inflate itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGzip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzInput(data, size)
    guard let inflated = try? Gzip.decompress(bytes, file: "input") else { return 0 }
    let again = mustSucceed("decompressing zlib's gzip of the inflated bytes") { try Gzip.decompress(gzipCompressed(inflated), file: "recompressed") }
    require(again == inflated, "\(inflated.count) inflated bytes came back as \(again.count) different bytes after recompressing")
    if let table = try? CSVTable.parse(bytes: inflated, file: "input") { checkParsedTable(table) }
    return 0
}

/// The bytes as one gzip member, compressed by zlib at its fastest level.
func gzipCompressed(_ bytes: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    // 15 + 16: the largest window, with a gzip header and trailer.
    guard deflateInit2_(&stream, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        fatalError("zlib could not start compressing")
    }
    defer { deflateEnd(&stream) }
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(bytes.count))))
    var input = bytes
    let status = input.withUnsafeMutableBufferPointer { source in
        output.withUnsafeMutableBufferPointer { room in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            stream.next_out = room.baseAddress
            stream.avail_out = UInt32(room.count)
            return deflate(&stream, Z_FINISH)
        }
    }
    require(status == Z_STREAM_END, "zlib's deflate returned \(status) with a buffer of deflateBound bytes")
    output.removeLast(Int(stream.avail_out))
    return output
}

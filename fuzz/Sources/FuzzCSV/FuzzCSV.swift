import FuzzSupport
import Kiln

/// `CSVTable.parse(bytes:)` on arbitrary bytes (CSV data files given to `--task files`).
///
/// Properties, for every input the parser accepts: those of `checkParsedTable` (the table's size, and that it
/// parses to itself when written back as CSV).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzInput(data, size)
    guard let table = try? CSVTable.parse(bytes: bytes, file: "input") else { return 0 }
    checkParsedTable(table)
    return 0
}

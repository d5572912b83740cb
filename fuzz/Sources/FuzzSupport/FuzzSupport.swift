import Kiln

/// Helpers shared by the fuzz targets.
///
/// A target returns normally for any input a parser rejects with a thrown error (that is the parser doing its
/// job) and stops with `fatalError` when a property fails; libFuzzer handles the trap as a crash and writes the
/// input to `crash-<hash>`.

/// The fuzzer's input as an array.
///
/// - Parameters:
///   - data: libFuzzer's buffer (nil or dangling when `size` is 0).
///   - size: Its length in bytes.
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Stops the fuzzer when a property does not hold.
///
/// - Parameters:
///   - condition: The property.
///   - message: What failed, with the values involved.
public func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}

/// Calls a function that must not throw for this input, and stops the fuzzer with the error if it does.
///
/// - Parameters:
///   - what: What was being done, for the message.
///   - body: The call.
/// - Returns: Its result.
public func mustSucceed<Value>(_ what: String, file: StaticString = #fileID, line: UInt = #line, _ body: () throws -> Value) -> Value {
    do {
        return try body()
    } catch {
        fatalError("\(what) threw: \(error)", file: file, line: line)
    }
}

/// Whether two numbers are the same value: equal, or both NaN (NaN is unequal to itself, and its sign and
/// payload mean nothing to Kiln).
public func sameNumber(_ a: Double, _ b: Double) -> Bool {
    a == b || (a.isNaN && b.isNaN)
}

/// Whether two number arrays hold the same values in the same order (see ``sameNumber(_:_:)``).
public func sameNumbers(_ a: [Double], _ b: [Double]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { sameNumber($0, $1) }
}

/// Whether two float arrays hold the same bits (a file read back must give exactly what was written).
public func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
}

/// The properties of every table `CSVTable` parses (the CSV and gzip targets):
/// - at least one row and one column, and `rows × columns` values;
/// - written back as the simplest CSV (one row per line, `,` between Swift's shortest form of each value:
///   `0.1`, `1e-05`, `nan`, `inf`), it parses to the same table.
public func checkParsedTable(_ table: CSVTable) {
    require(table.rows >= 1 && table.columns >= 1, "a table of \(table.rows) × \(table.columns)")
    require(table.values.count == table.rows * table.columns, "\(table.rows) × \(table.columns) but \(table.values.count) values")
    let text = (0..<table.rows).map { row in table.row(row).map { "\($0)" }.joined(separator: ",") }.joined(separator: "\n")
    let again = mustSucceed("parsing the table written back") { try CSVTable.parse(text, file: "written") }
    require(again.rows == table.rows && again.columns == table.columns, "\(table.rows) × \(table.columns) became \(again.rows) × \(again.columns)")
    require(sameNumbers(again.values, table.values), "values changed when written back and parsed:\n\(text)")
}

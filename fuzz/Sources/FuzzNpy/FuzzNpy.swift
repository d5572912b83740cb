import FuzzSupport
import Kiln

/// `NpyArray.decode` on arbitrary bytes (`--train-x`, `--train-y`, `--test-x`, `--test-y` and `kiln predict
/// --input` files).
///
/// Properties, for every input the decoder accepts:
/// - the values fill the shape;
/// - decode → encode → decode gives the same shape, dtype and values (NaN matching NaN);
/// - reading the values as labels (`integers`) returns or throws, never traps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNpy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzInput(data, size)
    guard let array = try? NpyArray.decode(bytes, file: "input") else { return 0 }
    require(array.values.count == array.shape.reduce(1, *), "shape \(array.shape) but \(array.values.count) values")
    let again = mustSucceed("decoding the re-encoded array") { try NpyArray.decode(array.encoded(), file: "re-encoded") }
    require(again.shape == array.shape && again.dtype == array.dtype, "\(array.dtype) \(array.shape) became \(again.dtype) \(again.shape)")
    require(sameNumbers(again.values, array.values), "the values of a \(array.dtype) \(array.shape) array changed in the round trip")
    _ = try? array.integers(file: "input")
    _ = array.floats
    return 0
}

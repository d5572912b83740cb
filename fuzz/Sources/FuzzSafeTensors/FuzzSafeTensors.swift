import FuzzSupport
import Kiln

/// `SafeTensorsFile.decode` on arbitrary bytes (what `kiln predict`, `plot`, `generate` and `train --resume`
/// read from a checkpoint).
///
/// Properties, for every input the decoder accepts:
/// - the writer accepts the decoded contents (`validationError` is nil): no file reads in that Kiln itself
///   refuses to write (for example two tensors of one name);
/// - decode → encode → decode gives the same tensors (names, shapes, the float bits, in file order) and metadata.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = fuzzInput(data, size)
    guard let file = try? SafeTensorsFile.decode(bytes, file: "input") else { return 0 }
    for tensor in file.tensors {
        require(tensor.values.count == tensor.shape.reduce(1, *), "tensor \(tensor.name): shape \(tensor.shape) but \(tensor.values.count) values")
    }
    if let error = file.validationError(file: "input") {
        fatalError("decode accepted contents that the writer refuses: \(error)")
    }
    let again = mustSucceed("decoding the re-encoded file") { try SafeTensorsFile.decode(file.encoded(), file: "re-encoded") }
    require(again.metadata == file.metadata, "metadata changed in the round trip: \(file.metadata) → \(again.metadata)")
    require(again.tensors.count == file.tensors.count, "\(file.tensors.count) tensors became \(again.tensors.count)")
    for (before, after) in zip(file.tensors, again.tensors) {
        require(before.name == after.name && before.shape == after.shape, "tensor \(before.name) \(before.shape) became \(after.name) \(after.shape)")
        require(sameBits(before.values, after.values), "tensor \(before.name): values changed in the round trip")
    }
    return 0
}

/// Unaligned eight-float loads and stores for the loops still written with Swift SIMD (the scan family's,
/// `CPUBackend+Scan.swift`, which extends this with its own lane math).
enum Lanes {
    @inline(__always)
    static func load(_ pointer: UnsafeMutablePointer<Float>, _ index: Int) -> SIMD8<Float> {
        UnsafeRawPointer(pointer + index).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store(_ value: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>, _ index: Int) {
        UnsafeMutableRawPointer(pointer + index).storeBytes(of: value, as: SIMD8<Float>.self)
    }
}

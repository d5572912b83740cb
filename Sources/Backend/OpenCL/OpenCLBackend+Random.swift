// The random family on OpenCL devices: `Kernels/random.cl`.

extension OpenCLBackend {
    func loadRandomKernels() throws(BackendError) {
        try loadKernels(from: "random.cl", options: "", names: ["random_uniform"])
    }

    public func randomUniform(into buffer: DeviceBuffer, count: Int, seed: UInt64, offset: UInt64) {
        RandomValidation.uniform(buffer, count: count)
        launch1D("random_uniform", count: count, [.int(count), .uint64(seed), .uint64(offset), .buffer(buffer)])
    }
}

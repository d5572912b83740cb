import Foundation
import KilnBackend
import KilnTestSupport
import Testing

@Suite("devices, memory, names and errors")
struct DeviceAndErrorTests {
    @Test("the device list starts with the CPU backend and marks exactly one default")
    func listing() {
        let devices = Devices.all()
        #expect(devices.first?.id == "cpu")
        #expect(devices.filter(\.isDefault).count == 1)
        for (index, device) in devices.dropFirst().enumerated() {
            #expect(device.id == "opencl:\(index)")
            #expect(device.backend == .opencl)
            #expect(device.openclCVersion != nil)
        }
        // auto prefers an OpenCL GPU and otherwise the CPU backend, never PoCL's CPU device.
        let gpu = devices.first { $0.backend == .opencl && $0.type == .gpu }
        #expect(devices.first(where: \.isDefault)?.id == (gpu?.id ?? "cpu"))
    }

    @Test("names resolve: auto, cpu, opencl, opencl:N, case and spaces ignored")
    func names() throws {
        #expect(try Devices.resolve("cpu").id == "cpu")
        #expect(try Devices.resolve(" CPU ").id == "cpu")
        #expect(try Devices.resolve("auto").isDefault)
        if Devices.hasOpenCL {
            #expect(try Devices.resolve("opencl").id == "opencl:0")
            #expect(try Devices.resolve("opencl:0").backend == .opencl)
        }
    }

    @Test("an explicit device choice takes effect", arguments: BackendCase.all)
    func explicitChoice(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        #expect(backend.device.id == backendCase.deviceID)
        #expect((backend is CPUBackend) == (backendCase.deviceID == "cpu"))
    }

    @Test("an unknown device is an error that lists the devices there are")
    func unknownDevice() {
        for name in ["gpu:7", "opencl:99", "cuda", ""] where !name.isEmpty {
            do {
                _ = try Devices.makeBackend(name)
                Issue.record("\(name) should not resolve")
            } catch {
                let message = error.description
                #expect(message.contains("unknown device '\(name)'"))
                #expect(message.contains("cpu"))
                for device in Devices.all() { #expect(message.contains(device.id)) }
                #expect(!message.contains("\n"))
            }
        }
    }

    @Test("out of memory is reported at the next synchronization, not as a crash", .enabled(if: Devices.hasOpenCL, "needs an OpenCL device"))
    func outOfMemory() throws {
        let backend = try Devices.makeBackend("opencl:0")
        let huge = backend.allocate(Int(1) << 45)  // 128 TiB
        backend.fill(huge, offset: 0, count: 10, value: 1)
        #expect(throws: BackendError.self) { try backend.synchronize() }
        do {
            let again = backend.allocate(Int(1) << 45)
            _ = again
            try backend.synchronize()
            Issue.record("expected an out-of-memory error")
        } catch {
            #expect(error.description.contains("out of memory"))
            #expect(error.description.contains("batch size"))
        }
        // The backend keeps working after the error has been read.
        let small = backend.makeBuffer([Float(1), 2, 3])
        #expect(try backend.download(small) == [1, 2, 3])
    }

    @Test("memory: upload at an offset, copy, fill, download a range", arguments: BackendCase.all)
    func memory(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var random = RandomGenerator.withFreshSeed()
        let values = random.floats(100)
        let buffer = backend.poisoned(130)
        backend.upload(values, to: buffer, offset: 30)
        backend.fill(buffer, offset: 0, count: 30, value: 2.5)
        let other = backend.poisoned(50)
        backend.copy(buffer, offset: 40, to: other, offset: 10, count: 40)
        backend.fill(other, offset: 0, count: 10, value: -1)
        #expect(try backend.download(buffer) == [Float](repeating: 2.5, count: 30) + values)
        #expect(try backend.download(other) == [Float](repeating: -1, count: 10) + Array(values[10..<50]))
        #expect(try backend.download(buffer, offset: 35, count: 5) == Array(values[5..<10]))
        let integers: [Int32] = [3, -7, Int32.max, 0]
        #expect(try backend.downloadIntegers(backend.makeBuffer(integers)) == integers)
    }

    @Test("buffers return to the pool and are reused", arguments: BackendCase.all)
    func pooling(_ backendCase: BackendCase) throws {
        let backend = try backendCase.makeBackend()
        var first: DeviceBuffer? = backend.makeBuffer([Float](repeating: 1, count: 4097))
        try backend.synchronize()
        let address = first!.address
        first = nil
        let second = backend.allocate(4097)
        #expect(second.address == address, "a freed buffer of the same size should be reused")
        backend.fill(second, offset: 0, count: 4097, value: 3)
        #expect(try backend.download(second).allSatisfy { $0 == 3 })
    }
}

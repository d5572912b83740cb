// Every OpenCL tuning parameter by name ("gemm.rowsPerItem", "scan.chunkedFromLength", …): the names the
// tuning files, the shipped database and the search spaces use, so one file may set only some of them.

/// One named integer parameter of ``OpenCLTuning`` (booleans are 0 or 1), with the values a file may set.
public struct TuningParameter: Sendable {
    public let name: String
    let read: @Sendable (OpenCLTuning) -> Int
    let write: @Sendable (inout OpenCLTuning, Int) -> Void
    /// Whether a value is one the kernels accept (a file's other values are ignored with a warning).
    let accepts: @Sendable (Int) -> Bool

    init(_ name: String, _ keyPath: WritableKeyPath<OpenCLTuning, Int> & Sendable, accepts: @escaping @Sendable (Int) -> Bool = { $0 >= 1 }) {
        self.name = name
        read = { $0[keyPath: keyPath] }
        write = { $0[keyPath: keyPath] = $1 }
        self.accepts = accepts
    }

    init(_ name: String, flag keyPath: WritableKeyPath<OpenCLTuning, Bool> & Sendable) {
        self.name = name
        read = { $0[keyPath: keyPath] ? 1 : 0 }
        write = { $0[keyPath: keyPath] = $1 != 0 }
        accepts = { $0 == 0 || $0 == 1 }
    }

    init(_ name: String, read: @escaping @Sendable (OpenCLTuning) -> Int, write: @escaping @Sendable (inout OpenCLTuning, Int) -> Void, accepts: @escaping @Sendable (Int) -> Bool) {
        self.name = name
        self.read = read
        self.write = write
        self.accepts = accepts
    }

    public func value(in tuning: OpenCLTuning) -> Int { read(tuning) }
}

extension OpenCLTuning {
    /// Every parameter a tuning file may set, in the order files list them. `scan.chunkedFromLength` and
    /// `scan.chunkedFromStateCount` from a file are a default that `KILN_SCAN_FORM` still overrides, as the
    /// built-in rules are.
    public static let parameters: [TuningParameter] = {
        let positive: @Sendable (Int) -> Bool = { $0 >= 1 }
        let nonNegative: @Sendable (Int) -> Bool = { $0 >= 0 }
        func group(_ name: String, _ keyPath: WritableKeyPath<OpenCLTuning, [Int]> & Sendable, _ axis: Int) -> TuningParameter {
            TuningParameter("\(name)\(axis)", read: { $0[keyPath: keyPath][axis] }, write: { $0[keyPath: keyPath][axis] = $1 }, accepts: positive)
        }
        return [
            TuningParameter("elementwise.groupSize", \.elementwiseGroupSize),
            TuningParameter("rows.groupSize", \.rowGroupSize),
            TuningParameter("rows.rowsPerGroup", \.rowsPerGroup),
            TuningParameter("gemm.rowsPerItem", \.gemm.rowsPerItem),
            TuningParameter("gemm.vectorWidth", \.gemm.vectorWidth, accepts: { [4, 8, 16].contains($0) }),
            TuningParameter("gemm.groupRows", \.gemm.groupRows),
            TuningParameter("gemm.groupColumns", \.gemm.groupColumns),
            TuningParameter("gemm.useLocalMemory", flag: \.gemm.useLocalMemory),
            TuningParameter("gemm.tileK", \.gemm.tileK),
            TuningParameter("gemm.aVectorWidth", \.gemm.aVectorWidth, accepts: { [1, 2, 4, 8, 16].contains($0) }),
            TuningParameter("gemm.aTileKMajor", flag: \.gemm.aTileKMajor),
            TuningParameter("gemm.aTilePadding", \.gemm.aTilePadding, accepts: nonNegative),
            TuningParameter("gemm.nonuniformKLoop", flag: \.gemm.nonuniformKLoop),
            TuningParameter("gemm.directGroupSize", \.gemm.directGroupSize),
            TuningParameter("gemm.directRowsPerItem", \.gemm.directRowsPerItem),
            TuningParameter("gemm.directColumnsPerItem", \.gemm.directColumnsPerItem),
            TuningParameter("gemm.directMaximumRows", \.gemm.directMaximumRows, accepts: nonNegative),
            TuningParameter("gemm.directMaximumColumns", \.gemm.directMaximumColumns, accepts: nonNegative),
            TuningParameter("gemm.directMaximumDepth", \.gemm.directMaximumDepth, accepts: nonNegative),
            TuningParameter("gemm.directMaximumWork", \.gemm.directMaximumWork, accepts: nonNegative),
            TuningParameter("scan.columnsPerItem", \.scan.columnsPerItem, accepts: { [1, 2, 4, 8, 16].contains($0) }),
            TuningParameter("scan.groupSize", \.scan.groupSize),
            TuningParameter("scan.chunkLength", \.scan.chunkLength),
            TuningParameter("scan.chunkedGroupSize", \.scan.chunkedGroupSize),
            TuningParameter("scan.chunkedLayout", read: { $0.scan.chunkedLayout.rawValue }, write: { $0.scan.chunkedLayout = ScanChunkedLayout(rawValue: $1) ?? .gpu },
                            accepts: { ScanChunkedLayout(rawValue: $0) != nil }),
            TuningParameter("scan.chunkedFromLength", read: { $0.scan.form.chunkedFromLength }, write: {
                var rule = $0.scan.form
                rule.chunkedFromLength = $1
                $0.scan.form = .environment(default: rule)
            }, accepts: nonNegative),
            TuningParameter("scan.chunkedFromStateCount", read: { $0.scan.form.chunkedFromStateCount }, write: {
                var rule = $0.scan.form
                rule.chunkedFromStateCount = $1
                $0.scan.form = .environment(default: rule)
            }, accepts: nonNegative),
            TuningParameter("spline.vectorWidth", \.spline.vectorWidth, accepts: { [1, 4, 8].contains($0) }),
            TuningParameter("spline.rowsPerItem", \.spline.rowsPerItem),
            TuningParameter("spline.tile", \.spline.tile),
            TuningParameter("spline.parts", \.spline.parts),
            group("spline.forwardGroup", \.spline.forwardGroup, 0), group("spline.forwardGroup", \.spline.forwardGroup, 1),
            group("spline.inputGradientGroup", \.spline.inputGradientGroup, 0), group("spline.inputGradientGroup", \.spline.inputGradientGroup, 1),
            group("spline.batchSumGroup", \.spline.batchSumGroup, 0), group("spline.batchSumGroup", \.spline.batchSumGroup, 1),
        ]
    }()

    /// The parameter with this name, if there is one.
    public static func parameter(named name: String) -> TuningParameter? { parameters.first { $0.name == name } }

    /// Every parameter's value, by name.
    public var values: [String: Int] {
        Dictionary(uniqueKeysWithValues: Self.parameters.map { ($0.name, $0.read(self)) })
    }

    /// This tuning with the given parameters set; unknown names and values the kernels do not accept
    /// are left out and described in the returned notes.
    public func setting(_ values: [String: Int]) -> (tuning: OpenCLTuning, rejected: [String]) {
        var result = self
        var rejected: [String] = []
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            guard let parameter = Self.parameter(named: name) else {
                rejected.append("unknown parameter \(name)")
                continue
            }
            guard parameter.accepts(value) else {
                rejected.append("\(name) = \(value) is not a value the kernels accept")
                continue
            }
            parameter.write(&result, value)
        }
        return (result, rejected)
    }

    /// The parameters whose values differ from `other`'s.
    public func differences(from other: OpenCLTuning) -> [String: Int] {
        var result: [String: Int] = [:]
        for parameter in Self.parameters where parameter.read(self) != parameter.read(other) {
            result[parameter.name] = parameter.read(self)
        }
        return result
    }
}

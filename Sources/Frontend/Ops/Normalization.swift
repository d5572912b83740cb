// Normalization over the last axis: RMSNorm (a fused kernel pair) and LayerNorm (composed).

/// RMSNorm (Zhang & Sennrich, 2019) over the last axis: `x / sqrt(mean(x²) + ε) · weight`.
///
/// - Parameters:
///   - x: `[..., features]`.
///   - weight: `[features]`.
public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float = 1e-6) -> Tensor {
    Tensor.checkSameDevice("rmsNorm", x, weight)
    let columns = x.shape.last ?? 1
    precondition(weight.shape == [columns], "rmsNorm: weight \(weight.shape) does not match features of \(x.shape)")
    let rows = x.elementCount / max(columns, 1)
    let backend = x.backend
    let out = Tensor(uninitialized: x.shape, on: backend)
    let inverseRMS = backend.allocate(rows)
    backend.rmsNorm(x.storage, weight: weight.storage, into: out.storage, inverseRMS: inverseRMS, rows: rows, columns: columns, epsilon: epsilon)
    out.recordGradient("rmsNorm", inputs: [x, weight]) { gradient in
        let dx = Tensor(uninitialized: x.shape, on: backend)
        let dw = Tensor(uninitialized: weight.shape, on: backend)
        backend.rmsNormBackward(x.storage, weight: weight.storage, inverseRMS: inverseRMS, outputGradient: gradient.storage, into: dx.storage, weightGradient: dw.storage, rows: rows, columns: columns)
        return [x.requiresGradient ? dx : nil, weight.requiresGradient ? dw : nil]
    }
    return out
}

/// LayerNorm (Ba et al., 2016) over the last axis: `(x − mean) / sqrt(var + ε) · weight + bias`, with the
/// biased variance as PyTorch computes it. Composed from differentiable ops.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, epsilon: Float = 1e-5) -> Tensor {
    let centered = x - x.mean(axis: -1, keepingDimensions: true)
    let variance = centered.square().mean(axis: -1, keepingDimensions: true)
    var out = centered * (variance + epsilon).rsqrt()
    if let weight { out = out * weight }
    if let bias { out = out + bias }
    return out
}

import Foundation
import KilnBackend

/// The linear-attention scans written plainly in float64, one step at a time with every state kept:
/// the oracle the backends and the frontend ops are checked against. Its own gradients are checked
/// against central finite differences of its forward pass (`ScanTests`).
///
/// Layouts match the backends: q, k and a per-key gate `[B, T, H, K]`; v and o `[B, T, H, V]`; beta and
/// a per-head gate `[B, T, H]`; states `[B, H, K, V]`.
public struct ScanReference: Sendable, CustomStringConvertible {
    public enum Rule: Sendable { case linear, delta }
    public enum GateLayout: Sendable { case none, perHead, perKey }

    public var batch: Int, length: Int, heads: Int, keys: Int, values: Int
    public var rule: Rule
    public var gate: GateLayout
    public var scale: Double

    public init(batch: Int, length: Int, heads: Int, keys: Int, values: Int, rule: Rule, gate: GateLayout, scale: Double) {
        precondition(rule == .linear || gate != .perKey, "the delta rule takes a per-head gate only")
        self.batch = batch
        self.length = length
        self.heads = heads
        self.keys = keys
        self.values = values
        self.rule = rule
        self.gate = gate
        self.scale = scale
    }

    public var description: String {
        "\(rule) gate \(gate) [B \(batch), T \(length), H \(heads), K \(keys), V \(values)]"
    }

    public var keyCount: Int { batch * length * heads * keys }
    public var valueCount: Int { batch * length * heads * values }
    public var headStepCount: Int { batch * length * heads }
    public var stateCount: Int { batch * heads * keys * values }
    public var gateCount: Int {
        switch gate {
        case .none: 0
        case .perHead: headStepCount
        case .perKey: keyCount
        }
    }

    /// The inputs of one scan (`gate` and `beta` empty where unused; `initialState` nil for zero).
    public struct Inputs: Sendable {
        public var query: [Double], key: [Double], value: [Double]
        public var gate: [Double], beta: [Double]
        public var initialState: [Double]?

        public init(query: [Double], key: [Double], value: [Double], gate: [Double], beta: [Double], initialState: [Double]?) {
            self.query = query
            self.key = key
            self.value = value
            self.gate = gate
            self.beta = beta
            self.initialState = initialState
        }
    }

    /// Gradients with respect to every input (`gate`, `beta` empty where unused).
    public struct Gradients: Sendable {
        public var query: [Double], key: [Double], value: [Double]
        public var gate: [Double], beta: [Double]
        public var initialState: [Double]
    }

    private func keyIndex(_ b: Int, _ t: Int, _ h: Int, _ k: Int) -> Int { ((b * length + t) * heads + h) * keys + k }
    private func valueIndex(_ b: Int, _ t: Int, _ h: Int, _ v: Int) -> Int { ((b * length + t) * heads + h) * values + v }
    private func headIndex(_ b: Int, _ t: Int, _ h: Int) -> Int { (b * length + t) * heads + h }
    private func stateIndex(_ b: Int, _ h: Int, _ k: Int, _ v: Int) -> Int { ((b * heads + h) * keys + k) * values + v }

    /// The decay of key k at step t.
    private func decay(_ inputs: Inputs, _ b: Int, _ t: Int, _ h: Int, _ k: Int) -> Double {
        switch gate {
        case .none: 1
        case .perHead: Foundation.exp(inputs.gate[headIndex(b, t, h)])
        case .perKey: Foundation.exp(inputs.gate[keyIndex(b, t, h, k)])
        }
    }

    /// One pair's states before each step (`states[t]`, `t = 0 … T`, `states[T]` the final state) and,
    /// for the delta rule, each step's `w = S′ᵀk` and `u`.
    private func run(_ inputs: Inputs, _ b: Int, _ h: Int) -> (states: [[Double]], removed: [[Double]], updates: [[Double]]) {
        var state = [Double](repeating: 0, count: keys * values)
        if let initial = inputs.initialState {
            for k in 0..<keys { for v in 0..<values { state[k * values + v] = initial[stateIndex(b, h, k, v)] } }
        }
        var states = [state], removed: [[Double]] = [], updates: [[Double]] = []
        for t in 0..<length {
            switch rule {
            case .linear:
                for k in 0..<keys {
                    let d = decay(inputs, b, t, h, k), kk = inputs.key[keyIndex(b, t, h, k)]
                    for v in 0..<values { state[k * values + v] = d * state[k * values + v] + kk * inputs.value[valueIndex(b, t, h, v)] }
                }
            case .delta:
                let gamma = decay(inputs, b, t, h, 0), strength = inputs.beta[headIndex(b, t, h)]
                var w = [Double](repeating: 0, count: values), u = w
                for v in 0..<values {
                    for k in 0..<keys { w[v] += gamma * state[k * values + v] * inputs.key[keyIndex(b, t, h, k)] }
                    u[v] = strength * (inputs.value[valueIndex(b, t, h, v)] - w[v])
                }
                for k in 0..<keys {
                    let kk = inputs.key[keyIndex(b, t, h, k)]
                    for v in 0..<values { state[k * values + v] = gamma * state[k * values + v] + kk * u[v] }
                }
                removed.append(w)
                updates.append(u)
            }
            states.append(state)
        }
        return (states, removed, updates)
    }

    /// The outputs `[B, T, H, V]` and the final state `[B, H, K, V]`.
    public func forward(_ inputs: Inputs) -> (output: [Double], finalState: [Double]) {
        var output = [Double](repeating: 0, count: valueCount)
        var finalState = [Double](repeating: 0, count: stateCount)
        for b in 0..<batch {
            for h in 0..<heads {
                let states = run(inputs, b, h).states
                for t in 0..<length {
                    for v in 0..<values {
                        var sum = 0.0
                        for k in 0..<keys { sum += states[t + 1][k * values + v] * scale * inputs.query[keyIndex(b, t, h, k)] }
                        output[valueIndex(b, t, h, v)] = sum
                    }
                }
                for k in 0..<keys { for v in 0..<values { finalState[stateIndex(b, h, k, v)] = states[length][k * values + v] } }
            }
        }
        return (output, finalState)
    }

    /// `Σ output ⊙ outputWeights + Σ finalState ⊙ stateWeights`: the scalar whose gradients
    /// ``backward(_:outputGradient:finalStateGradient:)`` computes with those weights as dO and dS_T.
    public func loss(_ inputs: Inputs, outputWeights: [Double], stateWeights: [Double]) -> Double {
        let (output, finalState) = forward(inputs)
        return zip(output, outputWeights).map(*).reduce(0, +) + zip(finalState, stateWeights).map(*).reduce(0, +)
    }

    /// Reverse-mode gradients, step by step backwards with `G = ∂L/∂S_t`.
    public func backward(_ inputs: Inputs, outputGradient: [Double], finalStateGradient: [Double]?) -> Gradients {
        var gradients = Gradients(
            query: [Double](repeating: 0, count: keyCount), key: [Double](repeating: 0, count: keyCount),
            value: [Double](repeating: 0, count: valueCount), gate: [Double](repeating: 0, count: gateCount),
            beta: [Double](repeating: rule == .delta ? 0 : 0, count: rule == .delta ? headStepCount : 0),
            initialState: [Double](repeating: 0, count: stateCount))
        for b in 0..<batch {
            for h in 0..<heads {
                let (states, removed, updates) = run(inputs, b, h)
                var G = [Double](repeating: 0, count: keys * values)
                if let finalStateGradient {
                    for k in 0..<keys { for v in 0..<values { G[k * values + v] = finalStateGradient[stateIndex(b, h, k, v)] } }
                }
                for t in stride(from: length - 1, through: 0, by: -1) {
                    let after = states[t + 1], before = states[t]
                    let dout = (0..<values).map { outputGradient[valueIndex(b, t, h, $0)] }
                    let q = (0..<keys).map { inputs.query[keyIndex(b, t, h, $0)] }
                    let key = (0..<keys).map { inputs.key[keyIndex(b, t, h, $0)] }
                    let value = (0..<values).map { inputs.value[valueIndex(b, t, h, $0)] }
                    for k in 0..<keys {
                        var dq = 0.0
                        for v in 0..<values {
                            G[k * values + v] += scale * q[k] * dout[v]
                            dq += after[k * values + v] * dout[v]
                        }
                        gradients.query[keyIndex(b, t, h, k)] = scale * dq
                    }
                    switch rule {
                    case .linear:
                        for k in 0..<keys {
                            let d = decay(inputs, b, t, h, k)
                            var dk = 0.0, dg = 0.0
                            for v in 0..<values {
                                dk += G[k * values + v] * value[v]
                                dg += G[k * values + v] * before[k * values + v]
                                gradients.value[valueIndex(b, t, h, v)] += G[k * values + v] * key[k]
                                G[k * values + v] *= d
                            }
                            gradients.key[keyIndex(b, t, h, k)] = dk
                            switch gate {
                            case .none: break
                            case .perHead: gradients.gate[headIndex(b, t, h)] += d * dg
                            case .perKey: gradients.gate[keyIndex(b, t, h, k)] = d * dg
                            }
                        }
                    case .delta:
                        let gamma = decay(inputs, b, t, h, 0), strength = inputs.beta[headIndex(b, t, h)]
                        let w = removed[t], u = updates[t]
                        var du = [Double](repeating: 0, count: values)
                        for v in 0..<values { for k in 0..<keys { du[v] += G[k * values + v] * key[k] } }
                        let dw = du.map { -strength * $0 }
                        var dbeta = 0.0
                        for v in 0..<values {
                            gradients.value[valueIndex(b, t, h, v)] = strength * du[v]
                            dbeta += du[v] * (value[v] - w[v])
                        }
                        gradients.beta[headIndex(b, t, h)] = dbeta
                        var dg = 0.0
                        for k in 0..<keys {
                            var dk = 0.0
                            for v in 0..<values {
                                let prime = gamma * before[k * values + v]
                                dk += G[k * values + v] * u[v] + prime * dw[v]
                                let dprime = G[k * values + v] + key[k] * dw[v]
                                dg += dprime * prime
                                G[k * values + v] = gamma * dprime
                            }
                            gradients.key[keyIndex(b, t, h, k)] = dk
                        }
                        if gate == .perHead { gradients.gate[headIndex(b, t, h)] = dg }
                    }
                }
                for k in 0..<keys { for v in 0..<values { gradients.initialState[stateIndex(b, h, k, v)] = G[k * values + v] } }
            }
        }
        return gradients
    }

    /// GLA's gate gradient as DESIGN.md states it: the reverse cumulative sum over steps `s ≥ t` of
    /// `q_s ⊙ dq_s − k_s ⊙ dk_s`, plus `rowsum(dS_T ⊙ S_T)` (summed over keys for a per-head gate).
    /// Independent of ``backward(_:outputGradient:finalStateGradient:)``'s direct formula, to check both.
    public func gateGradientByCumulativeSum(_ inputs: Inputs, gradients: Gradients, finalStateGradient: [Double]?) -> [Double] {
        precondition(rule == .linear && gate != .none)
        let finalState = forward(inputs).finalState
        var result = [Double](repeating: 0, count: gateCount)
        for b in 0..<batch {
            for h in 0..<heads {
                var running = [Double](repeating: 0, count: keys)
                if let finalStateGradient {
                    for k in 0..<keys { for v in 0..<values { running[k] += finalStateGradient[stateIndex(b, h, k, v)] * finalState[stateIndex(b, h, k, v)] } }
                }
                for t in stride(from: length - 1, through: 0, by: -1) {
                    for k in 0..<keys {
                        let i = keyIndex(b, t, h, k)
                        running[k] += inputs.query[i] * gradients.query[i] - inputs.key[i] * gradients.key[i]
                        if gate == .perKey { result[i] = running[k] } else { result[headIndex(b, t, h)] += running[k] }
                    }
                }
            }
        }
        return result
    }
}

extension RandomGenerator {
    /// Log-space gates `logsigmoid(x) / normalizer` for x uniform in (−3, 3): normalizer 0.1 gives strong
    /// gates (decays down to e^−30), 16 weak ones (decays near 1).
    public mutating func logGates(_ count: Int, normalizer: Double) -> [Float] {
        floats(count, in: -3...3).map { x in Float(-Foundation.log(1 + Foundation.exp(-Double(x))) / normalizer) }
    }

    /// Keys scaled to unit L2 norm over each row of `keys` (the delta rule's layers normalize k).
    public mutating func unitRows(_ count: Int, rowLength: Int) -> [Float] {
        var values = floats(count)
        for start in stride(from: 0, to: count, by: rowLength) {
            let norm = values[start..<(start + rowLength)].map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
            for i in start..<(start + rowLength) { values[i] = Float(Double(values[i]) / max(norm, 1e-6)) }
        }
        return values
    }
}

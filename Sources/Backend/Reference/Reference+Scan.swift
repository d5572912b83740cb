import Foundation

extension Reference {
    /// The scan family (``ScanKernels``) written plainly in float64, one step at a time with every state
    /// kept: the definition the backends and the frontend ops are checked against. Its own gradients are
    /// checked against central finite differences of its forward pass (`ScanTests`).
    ///
    /// Layouts match the backends: q, k and a per-key gate `[B, T, H, K]`; v and o `[B, T, H, V]`; beta
    /// and a per-head gate `[B, T, H]`; states `[B, H, K, V]`. For each batch and head, with
    /// `S_0 = initialState` (or zero) and the decay `d_t = exp(g_t)` (1 without a gate):
    ///
    ///     linear attention / GLA:  S_t = diag(d_t) S_{t−1} + k_t v_tᵀ
    ///     delta rule:              S′ = d_t S_{t−1},  u_t = beta_t (v_t − S′ᵀ k_t),  S_t = S′ + k_t u_tᵀ
    ///     both:                    o_t = S_tᵀ (scale · q_t)
    public struct Scan: Sendable, CustomStringConvertible {
        /// Which recurrence: ``ScanKernels/linearAttentionScan(_:shape:scale:into:)`` or
        /// ``ScanKernels/deltaRuleScan(_:shape:scale:into:)``.
        public enum Rule: Sendable { case linearAttention, deltaRule }
        /// The gate's layout (``ScanGate``); the delta rule takes a per-head gate only.
        public enum GateLayout: Sendable { case none, perHead, perKey }

        public var shape: ScanShape
        public var rule: Rule
        public var gate: GateLayout
        public var scale: Double

        public init(_ shape: ScanShape, rule: Rule, gate: GateLayout, scale: Double) {
            precondition(rule == .linearAttention || gate != .perKey, "Reference.Scan: the delta rule takes a per-head gate only")
            self.shape = shape
            self.rule = rule
            self.gate = gate
            self.scale = scale
        }

        public var description: String { "\(rule) gate \(gate) \(shape)" }

        /// Elements of the gate (and of its gradient).
        public var gateCount: Int {
            switch gate {
            case .none: 0
            case .perHead: shape.headStepCount
            case .perKey: shape.keyCount
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

        private var keys: Int { shape.keyDimension }
        private var values: Int { shape.valueDimension }
        private func keyIndex(_ b: Int, _ t: Int, _ h: Int, _ k: Int) -> Int { ((b * shape.length + t) * shape.heads + h) * keys + k }
        private func valueIndex(_ b: Int, _ t: Int, _ h: Int, _ v: Int) -> Int { ((b * shape.length + t) * shape.heads + h) * values + v }
        private func headIndex(_ b: Int, _ t: Int, _ h: Int) -> Int { (b * shape.length + t) * shape.heads + h }
        private func stateIndex(_ b: Int, _ h: Int, _ k: Int, _ v: Int) -> Int { ((b * shape.heads + h) * keys + k) * values + v }

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
            for t in 0..<shape.length {
                switch rule {
                case .linearAttention:
                    for k in 0..<keys {
                        let d = decay(inputs, b, t, h, k), kk = inputs.key[keyIndex(b, t, h, k)]
                        for v in 0..<values { state[k * values + v] = d * state[k * values + v] + kk * inputs.value[valueIndex(b, t, h, v)] }
                    }
                case .deltaRule:
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
            var output = [Double](repeating: 0, count: shape.valueCount)
            var finalState = [Double](repeating: 0, count: shape.stateCount)
            for b in 0..<shape.batch {
                for h in 0..<shape.heads {
                    let states = run(inputs, b, h).states
                    for t in 0..<shape.length {
                        for v in 0..<values {
                            var sum = 0.0
                            for k in 0..<keys { sum += states[t + 1][k * values + v] * scale * inputs.query[keyIndex(b, t, h, k)] }
                            output[valueIndex(b, t, h, v)] = sum
                        }
                    }
                    for k in 0..<keys { for v in 0..<values { finalState[stateIndex(b, h, k, v)] = states[shape.length][k * values + v] } }
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

        /// Reverse-mode gradients given dO and dS_T (nil means zero), step by step backwards with
        /// `G = ∂L/∂S_t`: `G += scale·q_t dO_tᵀ`, then for linear attention `dk_t = G v_t`, `dv_t = Gᵀ k_t`,
        /// `dg_t = d_t ⊙ rowsum(G ⊙ S_{t−1})`, `G ← diag(d_t) G`; for the delta rule `du = Gᵀ k_t`,
        /// `dv_t = beta_t du`, `dw = −beta_t du`, `dbeta_t = du · (v_t − w)`, `dk_t = G u_t + S′ dw`,
        /// `dS′ = G + k_t dwᵀ`, `dg_t = Σ dS′ ⊙ S′`, `G ← d_t dS′`; `dq_t = scale · S_t dO_t`, `dS_0 = G`.
        public func backward(_ inputs: Inputs, outputGradient: [Double]?, finalStateGradient: [Double]?) -> Gradients {
            var gradients = Gradients(
                query: [Double](repeating: 0, count: shape.keyCount), key: [Double](repeating: 0, count: shape.keyCount),
                value: [Double](repeating: 0, count: shape.valueCount), gate: [Double](repeating: 0, count: gateCount),
                beta: [Double](repeating: 0, count: rule == .deltaRule ? shape.headStepCount : 0),
                initialState: [Double](repeating: 0, count: shape.stateCount))
            for b in 0..<shape.batch {
                for h in 0..<shape.heads {
                    let (states, removed, updates) = run(inputs, b, h)
                    var G = [Double](repeating: 0, count: keys * values)
                    if let finalStateGradient {
                        for k in 0..<keys { for v in 0..<values { G[k * values + v] = finalStateGradient[stateIndex(b, h, k, v)] } }
                    }
                    for t in stride(from: shape.length - 1, through: 0, by: -1) {
                        let after = states[t + 1], before = states[t]
                        let dout = (0..<values).map { outputGradient?[valueIndex(b, t, h, $0)] ?? 0 }
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
                        case .linearAttention:
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
                        case .deltaRule:
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

        /// GLA's gate gradient in its other form: the reverse cumulative sum over steps `s ≥ t` of
        /// `q_s ⊙ dq_s − k_s ⊙ dk_s`, plus `rowsum(dS_T ⊙ S_T)` (summed over keys for a per-head gate).
        /// Independent of ``backward(_:outputGradient:finalStateGradient:)``'s direct formula, to check both.
        public func gateGradientByCumulativeSum(_ inputs: Inputs, gradients: Gradients, finalStateGradient: [Double]?) -> [Double] {
            precondition(rule == .linearAttention && gate != .none, "Reference.Scan: the cumulative-sum form is GLA's")
            let finalState = forward(inputs).finalState
            var result = [Double](repeating: 0, count: gateCount)
            for b in 0..<shape.batch {
                for h in 0..<shape.heads {
                    var running = [Double](repeating: 0, count: keys)
                    if let finalStateGradient {
                        for k in 0..<keys { for v in 0..<values { running[k] += finalStateGradient[stateIndex(b, h, k, v)] * finalState[stateIndex(b, h, k, v)] } }
                    }
                    for t in stride(from: shape.length - 1, through: 0, by: -1) {
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
}

import Foundation

// Fused optimizer updates on the CPU: one pass per parameter tensor, split across cores.

extension CPUBackend {
    public func optimizerStep(_ rule: UpdateRule, parameter: DeviceBuffer, gradient: DeviceBuffer, state: [DeviceBuffer], count: Int, learningRate: Float, step: Int, gradientScale: DeviceBuffer?) {
        precondition(state.count == rule.stateCount, "optimizerStep: \(rule) needs \(rule.stateCount) state buffers, got \(state.count)")
        precondition(([parameter, gradient] + state).allSatisfy { $0.count >= count }, "optimizerStep: count \(count) exceeds a buffer")
        precondition(step >= 1, "optimizerStep: steps count from 1, got \(step)")
        guard count > 0, ready(parameter, gradient), state.allSatisfy({ ready($0) }) else { return }
        if let gradientScale, !ready(gradientScale) { return }
        let scale: Float = gradientScale.map { floats($0)[0] } ?? 1
        // Threads own disjoint element ranges of the parameter and its state.
        nonisolated(unsafe) let p = floats(parameter), g = floats(gradient)
        nonisolated(unsafe) let s0 = state.first.map { floats($0) }, s1 = state.count > 1 ? floats(state[1]) : nil
        switch rule {
        case let .sgd(momentum, nesterov, weightDecay):
            Parallel.forRanges(count, grain: 16_384) { range in
                for i in range {
                    var grad = g[i] * scale + weightDecay * p[i]
                    if let velocity = s0 {
                        let v = momentum * velocity[i] + grad
                        velocity[i] = v
                        grad = nesterov ? grad + momentum * v : v
                    }
                    p[i] -= learningRate * grad
                }
            }
        case let .adam(beta1, beta2, epsilon, weightDecay, decoupled):
            let corrections = UpdateRule.biasCorrections(beta1: beta1, beta2: beta2, step: step)
            let stepSize = Float(Double(learningRate) * corrections.first)
            let correction2 = Float(corrections.secondRoot)
            let decay: Float = decoupled ? 1 - learningRate * weightDecay : 1
            let l2: Float = decoupled ? 0 : weightDecay
            let m = s0!, v = s1!
            Parallel.forRanges(count, grain: 16_384) { range in
                // Eight lanes at a time (the pointers may alias as far as the compiler knows, so it would
                // not vectorize this loop by itself), then the tail one by one.
                var i = range.lowerBound
                while i + 8 <= range.upperBound {
                    let parameter = Lanes.load(p, i)
                    let grad = Lanes.load(g, i) * scale + l2 * parameter
                    let first = beta1 * Lanes.load(m, i) + (1 - beta1) * grad
                    let second = beta2 * Lanes.load(v, i) + (1 - beta2) * grad * grad
                    Lanes.store(first, m, i)
                    Lanes.store(second, v, i)
                    Lanes.store(parameter * decay - stepSize * first / (second.squareRoot() * correction2 + epsilon), p, i)
                    i += 8
                }
                while i < range.upperBound {
                    let grad = g[i] * scale + l2 * p[i]
                    let first = beta1 * m[i] + (1 - beta1) * grad
                    let second = beta2 * v[i] + (1 - beta2) * grad * grad
                    m[i] = first
                    v[i] = second
                    p[i] = p[i] * decay - stepSize * first / (second.squareRoot() * correction2 + epsilon)
                    i += 1
                }
            }
        case let .adamAtan2(beta1, beta2, a, b, weightDecay):
            let corrections = UpdateRule.biasCorrections(beta1: beta1, beta2: beta2, step: step)
            let correction1 = Float(corrections.first), correction2 = Float(corrections.secondRoot)
            let decay = 1 - learningRate * weightDecay
            let m = s0!, v = s1!
            Parallel.forRanges(count, grain: 16_384) { range in
                for i in range {
                    let grad = g[i] * scale
                    let first = beta1 * m[i] + (1 - beta1) * grad
                    let second = beta2 * v[i] + (1 - beta2) * grad * grad
                    m[i] = first
                    v[i] = second
                    p[i] = p[i] * decay - learningRate * a * atan2(first * correction1, b * second.squareRoot() * correction2)
                }
            }
        }
    }
}

/// Unaligned eight-float loads and stores for hand-vectorized loops.
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

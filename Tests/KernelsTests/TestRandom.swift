// Test-data helpers on Kernels' seeded SplitMix64, so every run sees the same "random" data.

import Foundation
import Kernels

extension SplitMix64 {
    /// A standard normal sample (Box-Muller).
    mutating func normal() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    mutating func normals(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in normal() * scale }
    }

    mutating func bytes(_ n: Int) -> [UInt8] {
        (0..<n).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

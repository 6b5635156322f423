import ModelFiles
import Testing
import Tensors
@testable import Models

@Suite struct WeightScopeTests {
    func source() -> InMemoryWeights {
        let w = InMemoryWeights(location: "unet/diffusion_pytorch_model.safetensors")
        w.set("down_blocks.0.proj.weight", shape: [3, 2, 1, 1], values: [1, 2, 3, 4, 5, 6])
        w.set("down_blocks.0.proj.bias", shape: [3], values: [0.5, 0, -0.5])
        w.set("down_blocks.0.extra", shape: [1], values: [9])
        return w
    }

    @Test func bindsByNameAndSqueezesOneByOne() throws {
        let backend = try CPUBackend(threads: 1, precision: .float32)
        let scope = WeightScope(source: source(), backend: backend)
        let proj = scope("down_blocks")(0)("proj")
        #expect(proj.path("weight") == "down_blocks.0.proj.weight")
        // A 1×1 conv weight binds as a linear layer: y = x Wᵀ + b.
        let linear = try proj.linear(inFeatures: 2, outFeatures: 3)
        let y = try backend.floats(backend.linear(backend.tensor([1, 1], shape: [1, 2]), linear))
        #expect(y == [3.5, 7, 10.5])
        #expect(scope.unusedTensors() == ["down_blocks.0.extra"])
        #expect(throws: ModelFilesError.unusedTensors(path: "unet/diffusion_pytorch_model.safetensors",
                                                      tensors: ["down_blocks.0.extra"])) {
            try scope.requireAllUsed()
        }
        try scope.requireAllUsed(ignoring: { $0.hasSuffix(".extra") })
    }

    @Test func missingAndMisshapedTensorsNameTheirFullPath() throws {
        let scope = WeightScope(source: source(), backend: Backends.reference)
        #expect(throws: ModelFilesError.missingTensor(path: "unet/diffusion_pytorch_model.safetensors",
                                                      tensor: "down_blocks.1.proj.weight")) {
            try scope("down_blocks")(1)("proj").linear(inFeatures: 2, outFeatures: 3)
        }
        #expect(throws: ModelFilesError.shapeMismatch(path: "unet/diffusion_pytorch_model.safetensors",
                                                      tensor: "down_blocks.0.proj.weight", expected: [2, 3], actual: [3, 2, 1, 1])) {
            try scope("down_blocks")(0)("proj").linear(inFeatures: 3, outFeatures: 2)
        }
    }
}

enum Backends {
    static let reference = ReferenceBackend()
}

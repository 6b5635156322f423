import Testing
import Tensors
@testable import ModelFiles

@Suite struct InMemoryWeightsTests {
    @Test func servesTensorsAndRejectsWrongSizes() throws {
        let w = InMemoryWeights(location: "mem")
        w.set("a", shape: [2], values: [1, 2])
        try w.set("b", shape: [2], format: .float16, bytes: [0x00, 0x3C, 0x00, 0xC0])   // 1.0, -2.0
        #expect(w.names == ["a", "b"])
        let backend = ReferenceBackend()
        #expect(try backend.floats(w.tensor("b", on: backend)) == [1, -2])
        #expect(throws: ModelFilesError.self) { try w.set("c", shape: [3], format: .float16, bytes: [0, 0]) }
        #expect(throws: ModelFilesError.missingTensor(path: "mem", tensor: "zz")) { try w.tensor("zz", on: backend) }
    }
}

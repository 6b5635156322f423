import Foundation
import Testing
@testable import VulkanBackend

/// The committed SPIR-V is what the committed GLSL compiles to, and every module passes spirv-val.
@Suite struct ShaderBinaryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func committedSPIRVMatchesTheSources() throws {
        let process = Process()
        process.executableURL = Self.root.appendingPathComponent("tools/compile_shaders.sh")
        process.arguments = ["--check"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
    }

    @Test func everyShaderHasABinaryAndEveryBinaryAShader() throws {
        #expect(Set(Shader.allCases.map(\.rawValue)) == Set(ShaderBinaries.base64.keys))
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("Sources/VulkanBackend/Shaders").path)
            .filter { $0.hasSuffix(".comp") }.map { String($0.dropLast(5)) }
        #expect(Set(sources) == Set(ShaderBinaries.base64.keys))
        for shader in Shader.allCases { #expect(try shader.spirv().count > 5, "\(shader)") }
    }
}

import Foundation
import Testing
@testable import VulkanBackend

/// The committed SPIR-V is what the committed GLSL compiles to, and every module passes spirv-val.
@Suite struct ShaderBinaryTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The cooperative-matrix modules need glslang ≥ 13 from PyPI, which `make shader-tools`
    /// (run by `make test`) installs into .build/shader-tools; `swift test` never installs it.
    static var coopCompilerInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: root.appendingPathComponent(".build/shader-tools/bin/glslangValidator").path)
    }

    @Test(.enabled(if: coopCompilerInstalled, "the cooperative-matrix shader compiler is not installed (make shader-tools)"))
    func committedSPIRVMatchesTheSources() throws {
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

import ArgumentParser
import Foundation
import ModelFiles
import Models

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a model: where it resolved, its architecture, components, dtypes, sizes and problems.",
        discussion: """
        MODEL is a diffusers folder (pipeline or single model) or a Hugging Face id such as \
        stabilityai/sd-turbo, looked up offline in $HF_HUB_CACHE, $HF_HOME/hub or \
        ~/.cache/huggingface/hub. Every model is bound tensor by tensor (names and shapes; large \
        weights are checked without being read), so a broken or mismatched download shows up here.
        """
    )

    @Argument(help: "A model folder or a Hugging Face hub id (optionally id@revision).")
    var model: String

    func run() throws {
        let report = try ModelInspector.inspect(model)
        print("model:        \(model)")
        print("resolved to:  \(report.path) (\(report.origin))")
        print("architecture: \(report.architecture)")
        for c in report.components {
            print("\n[\(c.name)] \(c.className ?? "")")
            if let file = c.weightFile {
                let dtypes = c.dtypes.keys.sorted().map { "\($0) ×\(c.dtypes[$0] ?? 0)" }.joined(separator: ", ")
                print("  weights:    \(file): \(c.tensorCount) tensors, \(formatCount(c.parameterCount)) parameters (\(dtypes))")
            }
            if !c.detail.isEmpty { print("  \(c.detail)") }
            for problem in c.problems { print("  PROBLEM: \(problem)") }
        }
        let problems = report.problems
        print(problems.isEmpty ? "\nno problems found" : "\n\(problems.count) problem(s) found")
        if !problems.isEmpty { throw ExitCode(2) }
    }

    func formatCount(_ n: Int) -> String {
        n >= 1_000_000 ? String(format: "%.1f M", Double(n) / 1e6) : n >= 1000 ? String(format: "%.1f k", Double(n) / 1e3) : "\(n)"
    }
}

import Foundation
import Kiln
import KilnPlot
import Testing

@Suite("Formats: errors and atomic writes")
struct FormatsBasicsTests {
    @Test func errorDescriptionIsOneLine() {
        let error = FormatError(file: "a.npy", message: "bad\nthing")
        #expect(error.description == "a.npy: bad thing")
        #expect(error == FormatError(file: "a.npy", message: "bad\nthing"))
    }

    @Test func writeAtomicallyReplacesAndLeavesNoTemporaryFiles() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("data.bin")
        try writeAtomically([1, 2, 3], to: url)
        try writeAtomically([4, 5], to: url)
        #expect(try FormatsFixture.readBytes(url) == [4, 5])
        try writeAtomically([], to: url)
        #expect(try FormatsFixture.readBytes(url) == [])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["data.bin"])
    }

    @Test func writeAtomicallyIntoMissingFolderThrows() {
        let url = URL(fileURLWithPath: "/nonexistent-kiln-folder/x.bin")
        #expect(throws: FormatError.self) { try writeAtomically([1], to: url) }
    }

    @Test func readingMissingFileThrows() {
        FormatsFixture.expectError(file: "/nonexistent-kiln-folder/x.npy", ["no such file"]) { () throws(FormatError) in
            try NpyArray.read(from: URL(fileURLWithPath: "/nonexistent-kiln-folder/x.npy"))
        }
    }

    @Test func readingAFolderThrows() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        FormatsFixture.expectError(file: folder.path, ["folder"]) { () throws(FormatError) in
            try NpyArray.read(from: folder)
        }
    }

    @Test func plotsAreWrittenAsTheirDocuments() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plot = LinePlot(title: "loss", xLabel: "step", yLabel: "loss", series: [.init(name: "train", values: [3, 2, 1])])
        try plot.write(to: folder.appendingPathComponent("plot.svg"))
        #expect(try String(contentsOf: folder.appendingPathComponent("plot.svg"), encoding: .utf8) == plot.svg())
        let grid = PlotGrid(title: "both", panels: [plot, plot], columns: 2)
        try grid.write(to: folder.appendingPathComponent("grid.svg"))
        #expect(try String(contentsOf: folder.appendingPathComponent("grid.svg"), encoding: .utf8) == grid.svg())
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["grid.svg", "plot.svg"])
    }
}

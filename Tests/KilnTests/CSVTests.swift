import Foundation
import Kiln
import Testing

@Suite("Formats: CSV")
struct FormatsCSVTests {
    @Test func parsesHeadersSeparatorsAndSpecialValues() throws {
        let table = try CSVTable.parse("a, b ,c\r\n1,2,3\r\n\r\n 4 , -5.5 ,1e3\n\"7\",nan,-inf\n", file: "t.csv")
        #expect(table.rows == 3 && table.columns == 3)
        #expect(Array(table.values.prefix(7)) == [1, 2, 3, 4, -5.5, 1000, 7])
        #expect(table.values[7].isNaN && table.values[8] == -.infinity)

        let noHeader = try CSVTable.parse("1 2\t3\n  4   5 6  \n", file: "w.txt")
        #expect(noHeader == CSVTable(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 6]))
        let semicolons = try CSVTable.parse("x;y\n1;2\n3;4", file: "s.csv")
        #expect(semicolons == CSVTable(rows: 2, columns: 2, values: [1, 2, 3, 4]))
        let bom = try CSVTable.parse("\u{FEFF}1,2\n", file: "b.csv")
        #expect(bom.values == [1, 2])
        let inf = try CSVTable.parse("Inf,INFINITY,+inf,NaN,123456789012345678", file: "i.csv")
        #expect(inf.values[0] == .infinity && inf.values[1] == .infinity && inf.values[2] == .infinity && inf.values[3].isNaN)
        #expect(inf.values[4] == 123_456_789_012_345_680)
    }

    @Test func reportsRowsAndColumnsInErrors() {
        FormatsFixture.expectError(file: "t.csv", ["row 3 has 2 columns, expected 3"]) { () throws(FormatError) in
            try CSVTable.parse("a,b,c\n1,2,3\n4,5\n", file: "t.csv")
        }
        FormatsFixture.expectError(file: "t.csv", ["row 7 column 2: 'abc' is not a number"]) { () throws(FormatError) in
            try CSVTable.parse("1,2\n3,4\n\n5,6\n7,8\n9,10\n11,abc\n", file: "t.csv")
        }
        FormatsFixture.expectError(file: "t.csv", ["row 2 column 2: '' is not a number"]) { () throws(FormatError) in
            try CSVTable.parse("1,2\n3,\n", file: "t.csv")
        }
        FormatsFixture.expectError(file: "e.csv", ["empty file"]) { () throws(FormatError) in
            try CSVTable.parse("", file: "e.csv")
        }
        FormatsFixture.expectError(file: "e.csv", ["empty file"]) { () throws(FormatError) in
            try CSVTable.parse("\n \n\t\n", file: "e.csv")
        }
        FormatsFixture.expectError(file: "h.csv", ["only a header"]) { () throws(FormatError) in
            try CSVTable.parse("x,y\n", file: "h.csv")
        }
        FormatsFixture.expectError(file: "n.csv", ["row 2 column 1"]) { () throws(FormatError) in
            try CSVTable.parse("x\n\u{01}\u{02}garbage\n", file: "n.csv")
        }
    }

    @Test func readsPlainAndCompressedFiles() throws {
        let folder = try FormatsFixture.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("table.csv")
        try writeAtomically(Array("x,y\n1,2\n".utf8), to: url)
        #expect(try CSVTable.read(from: url) == CSVTable(rows: 1, columns: 2, values: [1, 2]))
        let gzip = FormatsGzipTests.small
        let gzURL = folder.appendingPathComponent("table.csv.gz")
        try writeAtomically(gzip, to: gzURL)
        #expect(try CSVTable.read(from: gzURL) == CSVTable(rows: 1, columns: 2, values: [3, 4]))
        var damaged = gzip
        damaged[17] ^= 1
        try writeAtomically(damaged, to: gzURL)
        FormatsFixture.expectError(file: gzURL.path, ["CRC-32"]) { () throws(FormatError) in try CSVTable.read(from: gzURL) }
    }
}

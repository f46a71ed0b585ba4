import Foundation
import KubeAPI
import Testing

@Suite("selectors")
struct SelectorTests {
    let labels = ["app": "web", "tier": "front", "env": "prod"]

    @Test("label selector operators =, ==, !=, in, notin, exists and ! match like the API's")
    func labelOperators() throws {
        #expect(try LabelSelector("app=web").matches(labels))
        #expect(try LabelSelector("app==web,tier=front").matches(labels))
        #expect(try !LabelSelector("app=db").matches(labels))
        #expect(try LabelSelector("app!=db").matches(labels))
        #expect(try LabelSelector("missing!=x").matches(labels))
        #expect(try LabelSelector("env in (prod, staging)").matches(labels))
        #expect(try !LabelSelector("env in (dev)").matches(labels))
        #expect(try LabelSelector("env notin (dev,qa)").matches(labels))
        #expect(try LabelSelector("missing notin (dev)").matches(labels))
        #expect(try LabelSelector("app").matches(labels))
        #expect(try !LabelSelector("!app").matches(labels))
        #expect(try LabelSelector("!legacy,app in (web),tier").matches(labels))
        #expect(try LabelSelector("").matches([:]))
        #expect(try LabelSelector("example.com/role=x").matches(["example.com/role": "x"]))
    }

    @Test("malformed label selectors are refused with the part at fault")
    func labelErrors() {
        for text in ["app in web", "a b=c", "app=(x)", "=x"] {
            #expect(throws: KubeAPIError.self, "\(text)") { _ = try LabelSelector(text) }
        }
    }

    @Test("field selectors match =, == and != against named fields")
    func fields() throws {
        let values = ["spec.nodeName": "n1", "metadata.namespace": "default"]
        let lookup: (String) -> String = { values[$0] ?? "" }
        #expect(try FieldSelector("spec.nodeName=n1").matches(lookup))
        #expect(try FieldSelector("spec.nodeName==n1,metadata.namespace!=kube-system").matches(lookup))
        #expect(try !FieldSelector("spec.nodeName!=n1").matches(lookup))
        #expect(try FieldSelector("spec.nodeName=").matches { _ in "" })
        #expect(try FieldSelector("spec.nodeName=n1").requiredValue(of: "spec.nodeName") == "n1")
        #expect(throws: KubeAPIError.self) { _ = try FieldSelector("spec.nodeName") }
    }
}

@Suite("quantities and int-or-string")
struct QuantityTests {
    @Test("quantities parse exactly in every suffix form")
    func exactValues() throws {
        #expect(try Quantity("100m").milliValue == 100)
        #expect(try Quantity("1").milliValue == 1000)
        #expect(try Quantity("1.5").milliValue == 1500)
        #expect(try Quantity("1Gi").value == 1_073_741_824)
        #expect(try Quantity("128974848").value == 128_974_848)
        #expect(try Quantity("129e6").value == 129_000_000)
        #expect(try Quantity("129M").value == 129_000_000)
        #expect(try Quantity("123Mi").value == 128_974_848)
        #expect(try Quantity("2Ei").value == 2_305_843_009_213_693_952)
        #expect(try Quantity("1k").value == 1000)
        #expect(try Quantity("500u").milliValue == 1)  // rounds up like Kubernetes
        #expect(try Quantity("1n").value == 1)
        #expect(try Quantity("0.5").value == 1)
        #expect(try Quantity("-1").value == -1)
        #expect(try Quantity("1E").value == 1_000_000_000_000_000_000)
        #expect(try Quantity("1Gi") == Quantity("1073741824"))
        #expect(try Quantity("1000m") == Quantity("1"))
    }

    @Test("malformed quantities are refused")
    func malformed() {
        for text in ["", "abc", "1Q", "1.2.3", "Gi", "1 Gi", "1e", "--1"] {
            #expect(throws: KubeAPIError.self, "\(text)") { _ = try Quantity(text) }
        }
    }

    @Test("quantities keep their text through JSON and accept numbers")
    func coding() throws {
        let requirements = try JSONDecoder().decode(ResourceRequirements.self, from: Data(#"{"limits":{"cpu":"250m","memory":1024}}"#.utf8))
        #expect(requirements.limits?["cpu"]?.milliValue == 250)
        #expect(requirements.limits?["memory"]?.value == 1024)
        let encoded = String(decoding: try JSONEncoder().encode(requirements.limits!["cpu"]!), as: UTF8.self)
        #expect(encoded == #""250m""#)
        #expect(throws: (any Error).self) {
            _ = try JSONDecoder().decode(ResourceRequirements.self, from: Data(#"{"limits":{"cpu":"lots"}}"#.utf8))
        }
    }

    @Test("int-or-string ports decode both forms and encode them back unchanged")
    func intOrString() throws {
        let ports = try JSONDecoder().decode([ServicePort].self, from: Data(#"[{"port":80,"targetPort":8080},{"port":443,"targetPort":"https"}]"#.utf8))
        #expect(ports[0].targetPort == .int(8080))
        #expect(ports[1].targetPort == .string("https"))
        let again = try JSONValue(encoding: ports)
        #expect(again.arrayValue?[0]["targetPort"] == .integer(8080))
        #expect(again.arrayValue?[1]["targetPort"] == .string("https"))
    }

    @Test("RFC 3339 times parse with fractions and offsets and format in UTC, up to nanoseconds")
    func times() throws {
        let date = try #require(RFC3339.parse("2024-02-29T23:59:58.123456+01:00"))
        #expect(RFC3339.format(date, fractionDigits: 6) == "2024-02-29T22:59:58.123456Z")
        #expect(RFC3339.format(try #require(RFC3339.parse("1970-01-01T00:00:00Z")), fractionDigits: 0) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.parse("2024-13-01T00:00:00Z") == nil)
        #expect(RFC3339.parse("yesterday") == nil)
        // Nine digits are nanoseconds (the kubelet's config.seen, containerd's times; a Date keeps about 0.1 µs); six
        // round to microseconds.
        let nanos = try #require(RFC3339.parse("1970-01-01T00:00:01.123456789Z"))
        let nine = RFC3339.format(nanos, fractionDigits: 9)
        #expect(nine.count == 30 && nine.hasPrefix("1970-01-01T00:00:01.123456") && nine.hasSuffix("Z"))
        #expect(RFC3339.format(nanos, fractionDigits: 6) == "1970-01-01T00:00:01.123457Z")
        #expect(RFC3339.format(nanos, fractionDigits: 3) == "1970-01-01T00:00:01.123Z")
    }
}

@Suite("unknown fields")
struct UnknownFieldTests {
    static let podJSON = #"""
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","resourceVersion":"7","managedFields":[{"manager":"kubectl"}]},
         "spec":{"containers":[{"name":"a","image":"i","futureField":{"x":1}},{"name":"b","image":"j"}],"futureSpec":true},
         "status":{"phase":"Running","resize":"InProgress"}}
        """#

    @Test("a read-modify-write keeps fields the model does not know, at every depth")
    func keepsUnknownFields() throws {
        var pod = try ResourceCodec.decode(Pod.self, from: Data(Self.podJSON.utf8))
        pod.metadata.labels = ["new": "label"]
        pod.spec?.containers[0].image = "i2"
        let written = try ResourceCodec.encodeValue(pod)
        #expect(written["metadata"]?["managedFields"] == [["manager": "kubectl"]])
        #expect(written["spec"]?["futureSpec"] == true)
        #expect(written["spec"]?["containers"]?.arrayValue?[0]["futureField"] == ["x": 1])
        #expect(written["spec"]?["containers"]?.arrayValue?[0]["image"] == "i2")
        #expect(written["status"]?["resize"] == "InProgress")
        #expect(written["metadata"]?["labels"] == ["new": "label"])
        #expect(written["kind"] == "Pod")
        #expect(written["apiVersion"] == "v1")
    }

    @Test("unknown fields follow list elements by name when the list is reordered")
    func followsByName() throws {
        var pod = try ResourceCodec.decode(Pod.self, from: Data(Self.podJSON.utf8))
        pod.spec?.containers.reverse()
        let written = try ResourceCodec.encodeValue(pod)
        let containers = try #require(written["spec"]?["containers"]?.arrayValue)
        #expect(containers[0]["name"] == "b")
        #expect(containers[0]["futureField"] == nil)
        #expect(containers[1]["futureField"] == ["x": 1])
    }

    @Test("clearing a known field really removes it")
    func clearingKnownField() throws {
        var pod = try ResourceCodec.decode(Pod.self, from: Data(Self.podJSON.utf8))
        pod.status?.phase = nil
        let written = try ResourceCodec.encodeValue(pod)
        #expect(written["status"]?["phase"] == nil)
        #expect(written["status"]?["resize"] == "InProgress")
    }

    @Test("a LIST is split into items that each keep their own JSON")
    func listItemsKeepJSON() throws {
        let list = #"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"abc"},"items":[\#(Self.podJSON),\#(Self.podJSON.replacingOccurrences(of: "\"p\"", with: "\"q\""))]}"#
        let decoded = try ResourceCodec.decodeList(Pod.self, from: Data(list.utf8))
        #expect(decoded.metadata.resourceVersion == "9")
        #expect(decoded.metadata.continue == "abc")
        #expect(decoded.items.map(\.name) == ["p", "q"])
        #expect(try ResourceCodec.encodeValue(decoded.items[1])["spec"]?["futureSpec"] == true)
    }

    @Test("a LIST with whitespace, null items or a broken item: items decode in one pass and the error names the item")
    func listShapes() throws {
        let spaced = " {\n \"items\" : [ \(Self.podJSON) ,\n\t\(Self.podJSON) ] , \"metadata\" : { \"resourceVersion\" : \"7\" } }\n"
        let decoded = try ResourceCodec.decodeList(Pod.self, from: Data(spaced.utf8))
        #expect(decoded.items.count == 2 && decoded.metadata.resourceVersion == "7")
        // Each item keeps exactly its own bytes, so a write puts its unknown fields back.
        #expect(try ResourceCodec.encodeValue(decoded.items[1])["spec"]?["futureSpec"] == true)
        #expect(try ResourceCodec.decodeList(Pod.self, from: Data(#"{"items":null,"metadata":{}}"#.utf8)).items.isEmpty)
        #expect(try ResourceCodec.decodeList(Pod.self, from: Data(#"{"items":[]}"#.utf8)).items.isEmpty)
        // Long strings shared between items decode to equal, independent values.
        let image = "registry.example.com/team/a-rather-long-image-name:1.2.3"
        let pods = (0..<3).map { #"{"metadata":{"name":"p\#($0)"},"spec":{"containers":[{"name":"c","image":"\#(image)"}]}}"# }
        var shared = try ResourceCodec.decodeList(Pod.self, from: Data(#"{"items":[\#(pods.joined(separator: ","))]}"#.utf8)).items
        #expect(shared.map { $0.spec?.containers.first?.image } == [image, image, image])
        shared[0].spec?.containers[0].image? += "-changed"
        #expect(shared[1].spec?.containers.first?.image == image)
        for (list, expected) in [
            (#"{"items":[\#(Self.podJSON),{"metadata":{"name":7}}]}"#, "list item 1"),
            (#"{"items":[\#(Self.podJSON),{"metadata":"#, "list item 1"),
            (#"{"items":[\#(Self.podJSON) \#(Self.podJSON)]}"#, "list items"),
            (#"{"items":{}}"#, "list items"),
            (#"["not a list"]"#, "Pod list"),
        ] {
            do {
                _ = try ResourceCodec.decodeList(Pod.self, from: Data(list.utf8))
                Issue.record("expected an error for \(list.suffix(40))")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }

    @Test("a malformed object is refused naming the kind and the field")
    func malformedObject() {
        do {
            _ = try ResourceCodec.decode(Pod.self, from: Data(#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","ports":[{"containerPort":"eighty"}]}]}}"#.utf8))
            Issue.record("expected a decoding error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("Pod"))
            #expect(text.contains("containerPort"), "\(text)")
        }
    }
}

@Suite("tape JSON decoder")
struct TapeDecoderTests {
    @Test("decodes a pod exactly as Foundation's JSONDecoder does")
    func agreesWithFoundation() throws {
        let json = Data(UnknownFieldTests.podJSON.utf8)
        let ours = try ResourceCodec.decode(Pod.self, from: json, keepUnknownFields: false)
        let foundation = try JSONDecoder().decode(Pod.self, from: json)
        #expect(ours == foundation)
        let text = #"{"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00","i":-42,"d":1.5e3,"b":true,"n":null,"arr":[1,2,3],"o":{"k":"v"},"data":"AAEC/w=="}"#
        struct Sample: Codable, Equatable {
            var s: String
            var i: Int
            var d: Double
            var b: Bool
            var n: String?
            var arr: [Int]
            var o: [String: String]
            var data: Data
        }
        let tape = try ResourceCodecTesting.decode(Sample.self, from: Data(text.utf8))
        #expect(tape == (try JSONDecoder().decode(Sample.self, from: Data(text.utf8))))
        #expect(tape.s == "a\"b\\c/d\né😀")
        #expect(tape.data == Data([0, 1, 2, 255]))
    }

    @Test("JSON values parse as JSONValue's own Decodable reads them through Foundation, and malformed ones are refused")
    func jsonValuesAgreeWithFoundation() throws {
        let documents = [
            UnknownFieldTests.podJSON,
            #"{"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00","i":-42,"big":18446744073709551616,"d":1.5e3,"f":0.25,"one":1.0,"b":true,"n":null,"arr":[1,"x",[],{}],"o":{"k":{"deep":[null,false]}}}"#,
            "[]", "{}", "7", "-0.5", "\"text\"", "null", "  [ 1 , 2 ]  ",
        ]
        for text in documents {
            let ours = try JSONValue.parse(Array(text.utf8), what: "sample")
            #expect(ours == (try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))), "\(text)")
        }
        for text in [#"{"a":}"#, "[1,]", #"{"a":1"#, "tru", #"{"a":1}}"#, ""] {
            #expect(throws: KubeAPIError.self, "\(text)") { _ = try JSONValue.parse(Array(text.utf8), what: "sample") }
        }
        let value = try JSONValue.parse(Array(#"{"n":[1,2.5]}"#.utf8))
        #expect(value["n"] == .array([.integer(1), .number(2.5)]))
    }

    @Test("malformed JSON and wrong types are refused with the path of the field")
    func errors() {
        for text in [#"{"a":}"#, #"{"a" 1}"#, #"[1,]"#, #"{"a":1"#, #"{"a":tru}"#, #"{"a":1}}"#, "{\"a\":\"\u{01}\"}"] {
            #expect(throws: DecodingError.self, "\(text)") { _ = try ResourceCodecTesting.decode([String: Int].self, from: Data(text.utf8)) }
        }
        do {
            _ = try ResourceCodecTesting.decode(Pod.self, from: Data(#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","ports":[{"containerPort":70000000000}]}]}}"#.utf8))
            Issue.record("expected an overflow error")
        } catch {
            #expect("\(DecodingErrorPath(error))".contains("spec.containers[0].ports[0].containerPort"), "\(error)")
        }
    }

    /// The path the decoder reports for `json`, or nil when it decodes.
    static func errorPath(_ json: String) -> String? {
        do {
            _ = try ResourceCodecTesting.decode(Pod.self, from: Data(json.utf8))
            return nil
        } catch {
            return "\(DecodingErrorPath(error))"
        }
    }

    @Test("error paths are rebuilt from the document: array positions, dictionary keys, missing keys, nulls")
    func errorPathsFromTheDocument() throws {
        let cases: [(String, String)] = [
            (#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","ports":[{"containerPort":1},{"containerPort":"x"}]}]}}"#,
                "spec.containers[1].ports[1].containerPort"),
            (#"{"metadata":{"labels":{"app":"web","tier":7}}}"#, "metadata.labels.tier"),
            (#"{"metadata":{"name":"p"},"spec":{"containers":[{"image":"x"}]}}"#, "spec.containers[0].name is required but missing"),
            (#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":null}]}}"#, "spec.containers[0].name"),
            (#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","resources":{"limits":{"cpu":"lots"}}}]}}"#, "spec.containers[0].resources.limits.cpu"),
            (#"{"metadata":{"name":"p"},"spec":{"containers":{"name":"a"}}}"#, "spec.containers"),
        ]
        for (json, expected) in cases {
            let path = Self.errorPath(json)
            #expect(path?.contains(expected) == true, "\(json): \(path ?? "decoded")")
        }
    }

    @Test("members are found in any order, absent ones are nil, and the same member can be read twice")
    func memberLookupOrder() throws {
        struct Sample: Codable, Equatable {
            var alpha: String
            var beta: Int?
            var gamma: [String: Int]
            var delta: Bool?
            var epsilon: [Int]
        }
        struct Twice: Decodable {
            var first: String
            var again: String
            enum CodingKeys: String, CodingKey { case name }
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                first = try container.decode(String.self, forKey: .name)
                again = try container.decode(String.self, forKey: .name)
            }
        }
        let orders = [
            #"{"alpha":"a","beta":2,"gamma":{"x":1},"delta":true,"epsilon":[1,2]}"#,
            #"{"epsilon":[1,2],"delta":true,"gamma":{"x":1},"beta":2,"alpha":"a"}"#,
            #"{"gamma":{"x":1},"unknown":{"alpha":"no"},"alpha":"a","epsilon":[1,2],"beta":2,"delta":true}"#,
        ]
        for json in orders {
            let decoded = try ResourceCodecTesting.decode(Sample.self, from: Data(json.utf8))
            #expect(decoded == Sample(alpha: "a", beta: 2, gamma: ["x": 1], delta: true, epsilon: [1, 2]), "\(json)")
        }
        let sparse = try ResourceCodecTesting.decode(Sample.self, from: Data(#"{"alpha":"a","gamma":{},"epsilon":[]}"#.utf8))
        #expect(sparse == Sample(alpha: "a", beta: nil, gamma: [:], delta: nil, epsilon: []))
        // An escaped member name is matched by its meaning, not its bytes.
        let escaped = try ResourceCodecTesting.decode(Sample.self, from: Data(#"{"\u0061lpha":"a","gamma":{"k\"ey":1},"epsilon":[3]}"#.utf8))
        #expect(escaped.alpha == "a" && escaped.gamma == ["k\"ey": 1])
        let twice = try ResourceCodecTesting.decode(Twice.self, from: Data(#"{"other":1,"name":"n"}"#.utf8))
        #expect(twice.first == "n" && twice.again == "n")
    }

    @Test("strings end at the right quote and refuse control characters at every offset of the 8-byte scan")
    func stringScanningAtEveryOffset() throws {
        for length in 0..<40 {
            let body = String(repeating: "x", count: length)
            for (inner, expected) in [("\\\"", "\""), ("\\\\", "\\"), ("é", "é")] {
                let json = "[\"\(body)\(inner)\(body)\",\"tail\"]"
                let decoded = try ResourceCodecTesting.decode([String].self, from: Data(json.utf8))
                #expect(decoded == [body + expected + body, "tail"], "\(json)")
            }
            let control = "[\"\(body)\u{01}\"]"
            #expect(throws: DecodingError.self, "\(length)") { _ = try ResourceCodecTesting.decode([String].self, from: Data(control.utf8)) }
            let unterminated = "[\"\(body)"
            #expect(throws: DecodingError.self, "\(length)") { _ = try ResourceCodecTesting.decode([String].self, from: Data(unterminated.utf8)) }
        }
    }
}

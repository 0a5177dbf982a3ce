package smartauthz;

import com.dylibso.chicory.runtime.ByteArrayMemory;
import com.dylibso.chicory.wasm.Parser;
import com.dylibso.chicory.wasm.types.MemoryImport;
import com.dylibso.chicory.wasm.types.MemoryLimits;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.styra.opa.wasm.OpaBuiltin;
import com.styra.opa.wasm.OpaPolicy;
import com.styra.opa.wasm.OpaWasm;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Parity host for the JVM: com.styra.opa:opa-java-wasm on the Chicory runtime.
 *
 * <pre>java -cp target/classes:target/lib/* smartauthz.ParityHost [--interpreter] &lt;bundle dir&gt; &lt;cases.json&gt; [out.json]</pre>
 *
 * By default Chicory translates the module to JVM bytecode (the library's default); --interpreter runs
 * it on Chicory's interpreter instead, a second independent engine.
 */
public final class ParityHost {
  /** Non-native builtins this host supplies to policy.wasm. The policy is meant to need none. */
  static final Map<String, OpaBuiltin.Builtin> HOST_BUILTINS = new TreeMap<>();

  public static void main(String[] args) throws Exception {
    boolean interpreter = args.length > 0 && args[0].equals("--interpreter");
    if (interpreter) args = java.util.Arrays.copyOfRange(args, 1, args.length);
    if (args.length < 2 || args.length > 3) {
      System.err.println("usage: ParityHost [--interpreter] <bundle dir> <cases.json> [out.json]");
      System.exit(2);
    }
    // Keep every number exactly as written (no double rounding) on the way in and out.
    ObjectMapper json = new ObjectMapper()
        .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
        .enable(DeserializationFeature.USE_BIG_INTEGER_FOR_INTS)
        .setNodeFactory(JsonNodeFactory.withExactBigDecimals(true));
    Path dir = Path.of(args[0]);
    byte[] wasm = Files.readAllBytes(dir.resolve("policy.wasm"));
    Path dataPath = dir.resolve("data.json");
    String data = Files.exists(dataPath) ? Files.readString(dataPath, StandardCharsets.UTF_8) : "{}";

    int initialPages = initialPages(wasm);
    checkBuiltins(wasm, initialPages);

    OpaPolicy.Builder builder = OpaPolicy.builder()
        .withPolicy(wasm)
        .withInitialMemory(initialPages)
        .withDefaultBuiltins(false)
        .addBuiltins(HOST_BUILTINS.values().toArray(new OpaBuiltin.Builtin[0]));
    if (interpreter) builder = builder.disableCompiler();
    OpaPolicy policy = builder.build();
    policy.data(data);

    ArrayNode out = json.createArrayNode();
    for (JsonNode c : json.readTree(Files.readString(Path.of(args[1]), StandardCharsets.UTF_8))) {
      ObjectNode o = out.addObject();
      o.set("id", c.get("id"));
      try {
        policy.entrypoint(c.get("entrypoint").asText());
        JsonNode input = c.get("input");
        JsonNode rs = json.readTree(policy.evaluate(input == null ? "null" : json.writeValueAsString(input)));
        if (rs.size() == 0) o.put("undefined", true);
        else o.set("result", rs.get(0).get("result"));
      } catch (Exception | Error e) {
        o.put("error", String.valueOf(e));
      }
    }
    String text = json.writeValueAsString(out);
    if (args.length == 3) Files.writeString(Path.of(args[2]), text, StandardCharsets.UTF_8);
    else System.out.println(text);
  }

  /** The library's default of 10 pages, or more if the module's env.memory import asks for more. */
  static int initialPages(byte[] wasm) {
    return Parser.parse(wasm).importSection().stream()
        .filter(i -> i instanceof MemoryImport && i.module().equals("env") && i.name().equals("memory"))
        .mapToInt(i -> ((MemoryImport) i).limits().initialPages())
        .reduce(10, Math::max);
  }

  /** Asks the module's builtins() export which host builtins it calls; refuses any not supplied. */
  static void checkBuiltins(byte[] wasm, int initialPages) throws Exception {
    OpaWasm probe = OpaWasm.builder()
        .withInputStream(new ByteArrayInputStream(wasm))
        .withJsonMapper(new ObjectMapper())
        .withMemory(new ByteArrayMemory(new MemoryLimits(initialPages, MemoryLimits.MAX_PAGES)))
        .withDefaultBuiltins(false)
        .disableCompiler()
        .build();
    int addr = probe.exports().opaJsonDump(probe.exports().builtins());
    JsonNode required = new ObjectMapper().readTree(probe.memory().readCString(addr));
    List<String> missing = new ArrayList<>();
    for (Iterator<String> it = required.fieldNames(); it.hasNext(); ) {
      String name = it.next();
      if (!HOST_BUILTINS.containsKey(name)) missing.add(name);
    }
    if (!missing.isEmpty()) {
      missing.sort(null);
      System.err.println("parity-java: policy.wasm needs builtins this host does not supply: " + String.join(", ", missing));
      System.exit(1);
    }
  }
}

// Loads .properties files with the real java.util.Properties and prints what it read, for the
// calypso-testkit JVM oracle (tests/src/jvm.rs). Usage: java PropertiesDump FILE...
//
// Output, ASCII only, one record per line:
//   for each file:   FILE
//   then twice, first via load(InputStream), then via load(new InputStreamReader(in, UTF_8)):
//                    OK <n>                    followed by n lines <key hex> <value hex>, sorted by key
//                    ERR <exception class> <message hex>
//   at the end:      END
// Hex encodes UTF-16 code units, four lower-case hex digits each, so every Java string (even one
// with unpaired surrogates, or empty) is written unambiguously.

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

public final class PropertiesDump {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    public static void main(String[] args) {
        PrintStream out = new PrintStream(
            new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false,
            StandardCharsets.US_ASCII);
        StringBuilder line = new StringBuilder();
        for (String file : args) {
            out.print("FILE\n");
            dump(out, line, file, false);
            dump(out, line, file, true);
        }
        out.print("END\n");
        out.flush();
        if (out.checkError()) {
            System.exit(2);
        }
    }

    private static void dump(PrintStream out, StringBuilder line, String file, boolean viaReader) {
        Properties props = new Properties();
        try (InputStream in = Files.newInputStream(Paths.get(file))) {
            if (viaReader) {
                props.load(new InputStreamReader(in, StandardCharsets.UTF_8));
            } else {
                props.load(in);
            }
        } catch (Exception e) {
            String message = e.getMessage() == null ? "" : e.getMessage();
            line.setLength(0);
            line.append("ERR ").append(e.getClass().getName()).append(' ');
            hex(line, message);
            out.print(line.append('\n'));
            return;
        }
        TreeMap<String, String> sorted = new TreeMap<>();
        for (Map.Entry<Object, Object> e : props.entrySet()) {
            sorted.put((String) e.getKey(), (String) e.getValue());
        }
        out.print("OK " + sorted.size() + "\n");
        for (Map.Entry<String, String> e : sorted.entrySet()) {
            line.setLength(0);
            hex(line, e.getKey());
            line.append(' ');
            hex(line, e.getValue());
            out.print(line.append('\n'));
        }
    }

    private static void hex(StringBuilder out, String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            out.append(HEX[(c >> 12) & 0xf]).append(HEX[(c >> 8) & 0xf]).append(HEX[(c >> 4) & 0xf]).append(HEX[c & 0xf]);
        }
    }
}

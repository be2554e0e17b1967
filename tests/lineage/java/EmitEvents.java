import io.openlineage.client.OpenLineage;
import io.openlineage.client.OpenLineageClient;
import io.openlineage.client.OpenLineageClientUtils;
import io.openlineage.client.transports.ApiKeyTokenProvider;
import io.openlineage.client.transports.HttpConfig;
import io.openlineage.client.transports.HttpTransport;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;

/** Usage: EmitEvents URL TOKEN gzip|none EVENT.json... ; sends each RunEvent with the official HTTP transport. */
public class EmitEvents {
  public static void main(String[] args) throws Exception {
    HttpConfig config = new HttpConfig();
    config.setUrl(URI.create(args[0]));
    config.setEndpoint("/api/v1/lineage");
    ApiKeyTokenProvider auth = new ApiKeyTokenProvider();
    auth.setApiKey(args[1]);
    config.setAuth(auth);
    if (args[2].equals("gzip")) {
      config.setCompression(HttpConfig.Compression.GZIP);
    }
    try (OpenLineageClient client = OpenLineageClient.builder().transport(new HttpTransport(config)).build()) {
      for (int i = 3; i < args.length; i++) {
        OpenLineage.RunEvent event = OpenLineageClientUtils.runEventFromJson(Files.readString(Path.of(args[i])));
        client.emit(event);
      }
    }
    System.out.println("sent " + (args.length - 3));
  }
}

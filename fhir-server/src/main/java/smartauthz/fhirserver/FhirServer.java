package smartauthz.fhirserver;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.MemoryBinaryStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import jakarta.persistence.EntityManagerFactory;
import java.net.InetSocketAddress;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import javax.sql.DataSource;
import org.apache.commons.dbcp2.BasicDataSource;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * A real HAPI FHIR R4 server for smart-authz's end-to-end tests.
 *
 * <p>HAPI's own JPA configuration on an in-memory H2 database, HAPI's {@link RestfulServer} servlet
 * mounted at {@code /fhir/*} in embedded Jetty, listening on 127.0.0.1 only. Every setting can be
 * given as a system property or an environment variable (the property wins):
 *
 * <ul>
 *   <li>{@code fhir.port} / {@code FHIR_PORT}: TCP port, default 18090;
 *   <li>{@code fhir.filter} / {@code FHIR_FILTER_ENABLED}: {@code true} (default) or {@code false},
 *       whether the {@code _filter} search parameter is supported;
 *   <li>{@code fhir.defaultPageSize} / {@code FHIR_DEFAULT_PAGE_SIZE}: page size without {@code
 *       _count}, default 20;
 *   <li>{@code fhir.maxPageSize} / {@code FHIR_MAX_PAGE_SIZE}: largest honoured {@code _count},
 *       default 2000.
 * </ul>
 *
 * <p>Prints one line {@code HAPI FHIR R4 ready on <base> ...} on standard output when it answers.
 * Any startup failure (bad setting, port in use, Spring context error) prints the cause and exits
 * with status 1; it never leaves a half-started JVM behind.
 */
public final class FhirServer {

  /** The settings this server runs with, resolved once at startup. */
  public record Settings(int port, boolean filterEnabled, int defaultPageSize, int maxPageSize) {

    static Settings resolve(Map<String, String> env) {
      int port = intSetting("fhir.port", "FHIR_PORT", 18090, 1, 65535, env);
      boolean filter = boolSetting("fhir.filter", "FHIR_FILTER_ENABLED", true, env);
      int defaultPage = intSetting("fhir.defaultPageSize", "FHIR_DEFAULT_PAGE_SIZE", 20, 1, 10000, env);
      int maxPage = intSetting("fhir.maxPageSize", "FHIR_MAX_PAGE_SIZE", 2000, 1, 10000, env);
      if (defaultPage > maxPage) {
        throw new IllegalArgumentException(
            "default page size " + defaultPage + " is larger than the maximum page size " + maxPage);
      }
      return new Settings(port, filter, defaultPage, maxPage);
    }

    private static String raw(String property, String envName, Map<String, String> env) {
      String v = System.getProperty(property);
      if (v == null) {
        v = env.get(envName);
      }
      return v == null || v.isBlank() ? null : v.trim();
    }

    private static int intSetting(
        String property, String envName, int dflt, int min, int max, Map<String, String> env) {
      String v = raw(property, envName, env);
      if (v == null) {
        return dflt;
      }
      int n;
      try {
        n = Integer.parseInt(v);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            property + "/" + envName + " must be an integer, got \"" + v + "\"");
      }
      if (n < min || n > max) {
        throw new IllegalArgumentException(
            property + "/" + envName + " must be in [" + min + ", " + max + "], got " + n);
      }
      return n;
    }

    private static boolean boolSetting(
        String property, String envName, boolean dflt, Map<String, String> env) {
      String v = raw(property, envName, env);
      if (v == null) {
        return dflt;
      }
      return switch (v.toLowerCase(Locale.ROOT)) {
        case "true", "1", "yes", "on" -> true;
        case "false", "0", "no", "off" -> false;
        default ->
            throw new IllegalArgumentException(
                property + "/" + envName + " must be true or false, got \"" + v + "\"");
      };
    }
  }

  /**
   * HAPI's JPA server wiring: its R4 and core configuration, the Batch2 job framework those need,
   * and the beans HAPI leaves to the application (database, JPA, storage settings, paging).
   */
  @Configuration
  @Import({
    JpaR4Config.class,
    HapiJpaConfig.class,
    JpaBatch2Config.class,
    Batch2JobsConfig.class,
    SubscriptionChannelConfig.class, // provides the IBrokerClient HapiJpaConfig needs
    ThreadPoolFactoryConfig.class, // provides the ThreadPoolFactory the Batch2 config needs
  })
  public static class JpaConfig {

    @Bean(destroyMethod = "close")
    public BasicDataSource dataSource() {
      BasicDataSource ds = new BasicDataSource();
      ds.setDriver(new org.h2.Driver());
      // One in-memory database that lives as long as the JVM (not as long as one connection).
      ds.setUrl("jdbc:h2:mem:smartauthz;DB_CLOSE_DELAY=-1");
      ds.setUsername("sa");
      ds.setPassword("");
      ds.setMaxTotal(10);
      return ds;
    }

    @Bean
    public JpaStorageSettings storageSettings(Settings settings) {
      JpaStorageSettings s = new JpaStorageSettings();
      // Test data PUTs ids such as Patient/123 (numeric, as in the demo tokens): allow any client id,
      // and give server-assigned ids UUIDs so the two can never collide.
      s.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
      s.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);
      // The data set has references to another server's Patient/123 (absolute URLs).
      s.setAllowExternalReferences(true);
      s.setAutoCreatePlaceholderReferenceTargets(false);
      // HAPI answers an identical search URL from a cached result for 60 s by default, even after
      // writes: a test that writes and then searches would read stale results.
      s.setReuseCachedSearchResultsForMillis(null);
      s.setFilterParameterEnabled(settings.filterEnabled());
      return s;
    }

    @Bean
    public PartitionSettings partitionSettings() {
      return new PartitionSettings();
    }

    @Bean
    @Primary
    public LocalContainerEntityManagerFactoryBean entityManagerFactory(
        ConfigurableListableBeanFactory beanFactory,
        FhirContext fhirContext,
        JpaStorageSettings storageSettings,
        DataSource dataSource) {
      LocalContainerEntityManagerFactoryBean emf =
          HapiEntityManagerFactoryUtil.newEntityManagerFactory(
              beanFactory, fhirContext, storageSettings);
      emf.setPersistenceUnitName("HAPI_PU");
      emf.setDataSource(dataSource);
      Properties jpa = new Properties();
      jpa.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
      jpa.put("hibernate.hbm2ddl.auto", "update");
      jpa.put("hibernate.show_sql", "false");
      // No Lucene/Elasticsearch full-text index: plain SQL search is what the tests exercise.
      jpa.put("hibernate.search.enabled", "false");
      jpa.put(
          "hibernate.archive.scanner", "org.hibernate.boot.archive.scan.internal.DisabledScanner");
      emf.setJpaProperties(jpa);
      return emf;
    }

    @Bean
    @Primary
    public JpaTransactionManager transactionManager(EntityManagerFactory emf) {
      return new JpaTransactionManager(emf);
    }

    @Bean
    public DatabaseBackedPagingProvider databaseBackedPagingProvider(Settings settings) {
      DatabaseBackedPagingProvider paging = new DatabaseBackedPagingProvider();
      paging.setDefaultPageSize(settings.defaultPageSize());
      paging.setMaximumPageSize(settings.maxPageSize());
      return paging;
    }

    @Bean
    public IBinaryStorageSvc binaryStorageSvc() {
      return new MemoryBinaryStorageSvcImpl();
    }
  }

  private FhirServer() {}

  public static void main(String[] args) {
    // slf4j-simple logs warnings and errors only unless told otherwise on the command line.
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    }
    if (args.length > 0) {
      System.err.println("fhir-server: takes no arguments (settings are system properties or environment variables)");
      System.exit(2);
    }
    try {
      start(Settings.resolve(System.getenv()));
    } catch (Throwable t) {
      System.err.println("fhir-server: startup failed: " + t);
      t.printStackTrace();
      // Spring and Batch2 leave non-daemon threads behind: a plain return would hang the JVM.
      System.exit(1);
    }
  }

  static void start(Settings settings) throws Exception {
    long t0 = System.nanoTime();
    AnnotationConfigApplicationContext spring = new AnnotationConfigApplicationContext();
    spring.registerBean(Settings.class, () -> settings);
    spring.register(JpaConfig.class);
    spring.refresh();

    RestfulServer fhir = new RestfulServer(spring.getBean(FhirContext.class));
    fhir.registerProviders(spring.getBean(ResourceProviderFactory.class).createProviders());
    fhir.registerProvider(spring.getBean(IJpaSystemProvider.class));
    @SuppressWarnings("rawtypes")
    IFhirSystemDao systemDao = spring.getBean(IFhirSystemDao.class);
    fhir.setServerConformanceProvider(
        new JpaCapabilityStatementProvider(
            fhir,
            systemDao,
            spring.getBean(JpaStorageSettings.class),
            spring.getBean(ISearchParamRegistry.class),
            spring.getBean(IValidationSupport.class)));
    fhir.setPagingProvider(spring.getBean(DatabaseBackedPagingProvider.class));
    fhir.setDefaultResponseEncoding(EncodingEnum.JSON);

    Server jetty = new Server(new InetSocketAddress("127.0.0.1", settings.port()));
    ServletContextHandler context = new ServletContextHandler();
    context.setContextPath("/");
    ServletHolder holder = new ServletHolder("fhir", fhir);
    holder.setInitOrder(1); // initialise HAPI at start, so a broken setup fails now, not on the first request
    context.addServlet(holder, "/fhir/*");
    jetty.setHandler(context);
    jetty.setStopAtShutdown(false);
    try {
      jetty.start();
    } catch (Exception e) {
      spring.close();
      throw e;
    }
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    jetty.stop();
                  } catch (Exception ignored) {
                    // stopping anyway
                  }
                  spring.close();
                },
                "fhir-server-shutdown"));
    System.out.printf(
        Locale.ROOT,
        "HAPI FHIR R4 ready on http://127.0.0.1:%d/fhir in %.1f s (_filter %s, page size %d, max %d)%n",
        settings.port(),
        (System.nanoTime() - t0) / 1e9,
        settings.filterEnabled() ? "on" : "off",
        settings.defaultPageSize(),
        settings.maxPageSize());
    System.out.flush();
    jetty.join();
  }
}
